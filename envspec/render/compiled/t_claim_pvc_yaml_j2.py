from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'claim/pvc.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_name = resolve('name')
    l_0_item = resolve('item')
    pass
    yield 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: '
    yield escape(environment.finalize((undefined(name='name') if l_0_name is missing else l_0_name)))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  accessModes: ['
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'accessMode')))
    yield ']\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'storageClass'):
        pass
        yield '  storageClassName: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'storageClass')))
        yield '\n'
    yield '  resources:\n    requests:\n      storage: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'size')))
    yield '\n'

blocks = {}
debug_info = '4=14&5=16&7=18&8=20&9=23&13=26'
# Generated from envspec/templates/claim/pvc.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
