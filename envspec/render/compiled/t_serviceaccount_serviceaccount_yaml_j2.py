from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'serviceaccount/serviceaccount.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_name = resolve('name')
    l_0_item = resolve('item')
    try:
        t_1 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    pass
    yield 'apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: '
    yield escape(environment.finalize((undefined(name='name') if l_0_name is missing else l_0_name)))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'annotations'):
        pass
        yield '  annotations: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'annotations')))
        yield '\n'
    if (not t_1(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'automount'))):
        pass
        yield 'automountServiceAccountToken: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'automount')))
        yield '\n'

blocks = {}
debug_info = '4=20&5=22&6=24&7=27&9=29&10=32'
# Generated from envspec/templates/serviceaccount/serviceaccount.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
