from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'gateway/gateway.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_item = resolve('item')
    pass
    yield 'apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  gatewayClassName: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'className')))
    yield '\n  listeners:\n'
    for l_1_l in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'listeners'):
        _loop_vars = {}
        pass
        yield '    - name: '
        yield escape(environment.finalize(environment.getattr(l_1_l, 'name')))
        yield '\n      protocol: '
        yield escape(environment.finalize(environment.getattr(l_1_l, 'protocol')))
        yield '\n      port: '
        yield escape(environment.finalize(environment.getattr(l_1_l, 'port')))
        yield '\n'
        if environment.getattr(l_1_l, 'hostname'):
            pass
            yield '      hostname: '
            yield escape(environment.finalize(environment.getattr(l_1_l, 'hostname')))
            yield '\n'
        yield '      allowedRoutes:\n        namespaces:\n          from: All\n'
        if (environment.getattr(l_1_l, 'protocol') == 'HTTPS'):
            pass
            yield '      tls:\n        mode: Terminate\n        certificateRefs:\n          - kind: Secret\n            name: '
            yield escape(environment.finalize(environment.getattr(l_1_l, 'tlsSecret')))
            yield '\n'
    l_1_l = missing

blocks = {}
debug_info = '4=13&5=15&7=17&9=19&10=23&11=25&12=27&13=29&14=32&19=35&24=38'
# Generated from envspec/templates/gateway/gateway.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
