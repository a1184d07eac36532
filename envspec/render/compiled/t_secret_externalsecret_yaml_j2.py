from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'secret/externalsecret.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_name = resolve('name')
    l_0_item = resolve('item')
    try:
        t_1 = environment.filters['dictsort']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'dictsort' found.")
    pass
    yield 'apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata:\n  name: '
    yield escape(environment.finalize((undefined(name='name') if l_0_name is missing else l_0_name)))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  refreshInterval: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'refreshInterval')))
    yield '\n  secretStoreRef:\n    name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'store')))
    yield '\n    kind: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'storeKind')))
    yield '\n  target:\n    name: '
    yield escape(environment.finalize((undefined(name='name') if l_0_name is missing else l_0_name)))
    yield '\n    creationPolicy: Owner\n  data:\n'
    for (l_1_key, l_1_remote) in t_1(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'data')):
        _loop_vars = {}
        pass
        yield '    - secretKey: '
        yield escape(environment.finalize(l_1_key))
        yield '\n      remoteRef:\n        key: '
        yield escape(environment.finalize(l_1_remote))
        yield '\n'
    l_1_key = l_1_remote = missing

blocks = {}
debug_info = '4=20&5=22&7=24&9=26&10=28&12=30&15=32&16=36&18=38'
# Generated from envspec/templates/secret/externalsecret.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
