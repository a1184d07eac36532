from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'route/httproute.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_item = resolve('item')
    pass
    yield 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  parentRefs:\n    - name: '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'parent'), 'name')))
    yield '\n      namespace: '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'parent'), 'namespace')))
    yield '\n      sectionName: '
    yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'parent'), 'sectionName')))
    yield '\n  hostnames: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'hostnames')))
    yield '\n  rules:\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'backend'):
        pass
        yield '    - backendRefs:\n        - name: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'backend'), 'name')))
        yield '\n          port: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'backend'), 'port')))
        yield '\n'
    else:
        pass
        yield '    - filters:\n        - type: RequestRedirect\n          requestRedirect: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'redirect')))
        yield '\n'

blocks = {}
debug_info = '4=13&5=15&8=17&9=19&10=21&11=23&13=25&15=28&16=30&20=35'
# Generated from envspec/templates/route/httproute.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
