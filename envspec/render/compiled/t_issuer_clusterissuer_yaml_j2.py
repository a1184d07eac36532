from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'issuer/clusterissuer.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_name = resolve('name')
    l_0_item = resolve('item')
    pass
    yield 'apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: '
    yield escape(environment.finalize((undefined(name='name') if l_0_name is missing else l_0_name)))
    yield '\nspec:\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'selfSigned'):
        pass
        yield '  selfSigned: {}\n'
    else:
        pass
        yield '  acme:\n    server: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'acme'), 'server')))
        yield '\n    email: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'acme'), 'email')))
        yield '\n    privateKeySecretRef:\n      name: '
        yield escape(environment.finalize(markup_join(((undefined(name='name') if l_0_name is missing else l_0_name), '-account-key', ))))
        yield '\n    solvers:\n'
        if environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'acme'), 'dns01'):
            pass
            yield '      - dns01: '
            yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'acme'), 'dns01')))
            yield '\n'
        if environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'acme'), 'http01'):
            pass
            yield '      - http01:\n          gatewayHTTPRoute: {}\n'

blocks = {}
debug_info = '4=14&6=16&10=22&11=24&13=26&15=28&16=31&18=33'
# Generated from envspec/templates/issuer/clusterissuer.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
