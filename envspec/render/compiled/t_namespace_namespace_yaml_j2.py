from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'namespace/namespace.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_item = resolve('item')
    pass
    yield 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
    yield '\n'

blocks = {}
debug_info = '4=13'
# Generated from envspec/templates/namespace/namespace.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
