from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'namespace/networkpolicy.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_item = resolve('item')
    pass
    yield 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: isolate\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  podSelector: {}\n  policyTypes: ["Ingress", "Egress"]\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'ingressFromNamespaces'):
        pass
        yield '  ingress:\n    - from:\n'
        for l_1_ns in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'ingressFromNamespaces'):
            _loop_vars = {}
            pass
            yield '        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: '
            yield escape(environment.finalize(l_1_ns))
            yield '\n'
        l_1_ns = missing
    else:
        pass
        yield '  ingress: []\n'
    if ((environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'egressDns') or environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'egressHttps')) or environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'egressServices')):
        pass
        yield '  egress:\n'
        if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'egressDns'):
            pass
            yield '    - to:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: kube-system\n      ports:\n        - {protocol: UDP, port: 53}\n        - {protocol: TCP, port: 53}\n'
        if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'egressHttps'):
            pass
            yield '    - ports:\n        - {protocol: TCP, port: 443}\n'
        for l_1_svc in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'egressServices'):
            _loop_vars = {}
            pass
            yield '    - to:\n        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: '
            yield escape(environment.finalize(environment.getattr(l_1_svc, 'namespace')))
            yield '\n          podSelector:\n            matchLabels: '
            yield escape(environment.finalize(environment.getattr(l_1_svc, 'selector')))
            yield '\n      ports:\n        - protocol: TCP\n          port: '
            yield escape(environment.finalize(environment.getattr(l_1_svc, 'port')))
            yield '\n'
        l_1_svc = missing
    else:
        pass
        yield '  egress: []\n'

blocks = {}
debug_info = '6=13&10=15&13=18&16=22&21=28&23=31&32=34&36=37&40=41&42=43&45=45'
# Generated from envspec/templates/namespace/networkpolicy.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
