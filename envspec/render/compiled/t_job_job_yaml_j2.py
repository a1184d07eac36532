from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'job/job.yaml.j2'

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
    included_template = environment.get_template('_container.j2', 'job/job.yaml.j2')._get_default_module(context)
    l_0_container = getattr(included_template, 'container', missing)
    if l_0_container is missing:
        l_0_container = undefined(f"the template {included_template.__name__!r} (imported on line 1 in 'job/job.yaml.j2') does not export the requested name 'container'", name='container')
    l_0_pod_extras = getattr(included_template, 'pod_extras', missing)
    if l_0_pod_extras is missing:
        l_0_pod_extras = undefined(f"the template {included_template.__name__!r} (imported on line 1 in 'job/job.yaml.j2') does not export the requested name 'pod_extras'", name='pod_extras')
    context.vars.update({'container': l_0_container, 'pod_extras': l_0_pod_extras})
    context.exported_vars.difference_update(('container', 'pod_extras'))
    yield 'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
    yield '\n  namespace: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'namespace')))
    yield '\nspec:\n  backoffLimit: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'backoffLimit')))
    yield '\n'
    if (not t_2(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'ttlSecondsAfterFinished'))):
        pass
        yield '  ttlSecondsAfterFinished: '
        yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'ttlSecondsAfterFinished')))
        yield '\n'
    yield '  template:\n    metadata:\n      labels:\n        batch.kubernetes.io/job-name: '
    yield escape(environment.finalize(environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'name')))
    yield '\n    spec:\n      restartPolicy: Never\n'
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
    yield '      containers:\n        '
    yield escape(environment.finalize(t_1(environment.call(context, (undefined(name='container') if l_0_container is missing else l_0_container), (undefined(name='item') if l_0_item is missing else l_0_item)), 8)))
    yield '\n'
    if environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'podExtras'):
        pass
        yield '      '
        yield escape(environment.finalize(t_1(environment.call(context, (undefined(name='pod_extras') if l_0_pod_extras is missing else l_0_pod_extras), environment.getattr((undefined(name='item') if l_0_item is missing else l_0_item), 'podExtras')), 6)))
        yield '\n'

blocks = {}
debug_info = '1=25&5=35&6=37&8=39&9=41&10=44&15=47&18=49&20=52&21=56&25=60&26=62&27=65'
# Generated from envspec/templates/job/job.yaml.j2 by `python -m envspec.render.precompile`: do not edit.
