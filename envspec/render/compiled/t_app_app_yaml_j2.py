from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'app/app.yaml.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_item = resolve('item')
    l_0_container = l_0_pod_extras = missing
    try:
        t_1 = environment.filters['indent']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'indent' found.")
    try:
        t_2 = environment.tests['none']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No test named 'none' found.")
    pass
    included_template = environment.get_template('_container.j2', 'app/app.yaml.j2')._get_default_module(context)
    l_0_container = getattr(included_template, 'container', missing)
    if l_0_container is missing:
        l_0_container = undefined(f"the template {included_template.__name__!r} (imported on line 1 in 'app/app.yaml.j2') does not export the requested name 'container'", name='container')
    l_0_pod_extras = getattr(included_template, 'pod_extras', missing)
    if l_0_pod_extras is missing:
        l_0_pod_extras = undefined(f"the template {included_template.__name__!r} (imported on line 1 in 'app/app.yaml.j2') does not export the requested name 'pod_extras'", name='pod_extras')
    context.vars.update({'container': l_0_container, 'pod_extras': l_0_pod_extras})
    context.exported_vars.difference_update(('container', 'pod_extras'))
    yield 'apiVersion: apps/v1\nkind: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'kind')))
    yield '\nmetadata:\n  name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n'
    if (not t_2(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'replicas'))):
        pass
        yield '  replicas: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'replicas')))
        yield '\n'
    if ((environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'kind') == 'StatefulSet') and environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'service')):
        pass
        yield '  serviceName: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
        yield '\n'
    yield '  selector:\n    matchLabels: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'selector')))
    yield '\n'
    if (environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'kind') == 'Deployment'):
        pass
        yield '  strategy:\n'
        if (environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'strategy') == 'Recreate'):
            pass
            yield '    type: Recreate\n'
        else:
            pass
            yield '    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: '
            yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'maxSurge')))
            yield '\n      maxUnavailable: 0\n'
    yield '  template:\n    metadata:\n      labels: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'selector')))
    yield '\n    spec:\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'imagePullSecrets'):
        pass
        yield '      imagePullSecrets:\n'
        for l_1_s in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'imagePullSecrets'):
            _loop_vars = {}
            pass
            yield '        - name: '
            yield escape(environment.finalize(l_1_s))
            yield '\n'
        l_1_s = missing
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'initContainers'):
        pass
        yield '      initContainers:\n'
        for l_1_c in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'initContainers'):
            _loop_vars = {}
            pass
            yield '        '
            yield escape(environment.finalize(t_1(environment.call(context, (undefined(name='container') if l_0_container is missing else l_0_container), l_1_c, _loop_vars=_loop_vars), 8)))
            yield '\n'
        l_1_c = missing
    yield '      containers:\n'
    for l_1_c in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'containers'):
        _loop_vars = {}
        pass
        yield '        '
        yield escape(environment.finalize(t_1(environment.call(context, (undefined(name='container') if l_0_container is missing else l_0_container), l_1_c, _loop_vars=_loop_vars), 8)))
        yield '\n'
    l_1_c = missing
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'volumes'):
        pass
        yield '      volumes: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'volumes')))
        yield '\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'podExtras'):
        pass
        yield '      '
        yield escape(environment.finalize(t_1(environment.call(context, (undefined(name='pod_extras') if l_0_pod_extras is missing else l_0_pod_extras), environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'podExtras')), 6)))
        yield '\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'claimTemplates'):
        pass
        yield '  volumeClaimTemplates:\n'
        for l_1_t in environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'claimTemplates'):
            _loop_vars = {}
            pass
            yield '    - metadata:\n        name: '
            yield escape(environment.finalize(environment.getattr(l_1_t, 'name')))
            yield '\n      spec:\n        accessModes: ['
            yield escape(environment.finalize(environment.getattr(l_1_t, 'accessMode')))
            yield ']\n'
            if environment.getattr(l_1_t, 'storageClass'):
                pass
                yield '        storageClassName: '
                yield escape(environment.finalize(environment.getattr(l_1_t, 'storageClass')))
                yield '\n'
            yield '        resources:\n          requests:\n            storage: '
            yield escape(environment.finalize(environment.getattr(l_1_t, 'size')))
            yield '\n'
        l_1_t = missing
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'service'):
        pass
        yield '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
        yield '\n  namespace: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
        yield '\nspec:\n'
        if environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'service'), 'headless'):
            pass
            yield '  clusterIP: None\n'
        yield '  selector: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'selector')))
        yield '\n  ports: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'service'), 'ports')))
        yield '\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'disruptionBudget'):
        pass
        yield '---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
        yield '\n  namespace: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
        yield '\nspec:\n  minAvailable: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'disruptionBudget'), 'minAvailable')))
        yield '\n  selector:\n    matchLabels: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'selector')))
        yield '\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'autoscale'):
        pass
        yield '---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
        yield '\n  namespace: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
        yield '\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'kind')))
        yield '\n    name: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
        yield '\n  minReplicas: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'autoscale'), 'minReplicas')))
        yield '\n  maxReplicas: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'autoscale'), 'maxReplicas')))
        yield '\n  metrics: '
        yield escape(environment.finalize(environment.getattr(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'autoscale'), 'metrics')))
        yield '\n'

blocks = {}
debug_info = '1=25&3=35&5=37&6=39&8=41&9=44&11=46&12=49&15=52&16=54&18=57&23=63&29=66&31=68&33=71&34=75&37=78&39=81&40=85&44=89&45=93&47=96&48=99&50=101&51=104&53=106&55=109&57=113&59=115&60=117&61=120&65=123&68=126&73=129&74=131&76=133&79=137&80=139&82=141&87=144&88=146&90=148&92=150&94=152&99=155&100=157&104=159&105=161&106=163&107=165&108=167'
# Generated from envspec/templates/app/app.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
