from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'namespace/resourcequota.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_item = resolve('item')
    try:
        t_1 = environment.filters['string']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'string' found.")
    pass
    yield 'apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: quota\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  hard:\n    requests.cpu: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'cpu')))
    yield '\n    requests.memory: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'memory')))
    yield '\n    limits.cpu: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'cpu')))
    yield '\n    limits.memory: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'memory')))
    yield '\n    pods: '
    yield escape(environment.finalize(t_1(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'pods'))))
    yield '\n'

blocks = {}
debug_info = '5=19&8=21&9=23&10=25&11=27&12=29'
# Generated from envspec/templates/namespace/resourcequota.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
