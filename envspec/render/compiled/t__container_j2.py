from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = '_container.j2'

def root(context, missing=missing, environment=environment):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_container = l_0_pod_extras = missing
    pass
    def macro(l_1_c):
        t_1 = []
        if l_1_c is missing:
            l_1_c = undefined("parameter 'c' was not provided", name='c')
        pass
        t_1.extend((
            '- name: ',
            escape(environment.finalize(environment.getattr(l_1_c, 'name'))),
            '\n  image: ',
            escape(environment.finalize(environment.getattr(l_1_c, 'image'))),
            '\n',
        ))
        if environment.getattr(l_1_c, 'imagePullPolicy'):
            pass
            t_1.extend((
                '  imagePullPolicy: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'imagePullPolicy'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'command'):
            pass
            t_1.extend((
                '  command: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'command'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'args'):
            pass
            t_1.extend((
                '  args: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'args'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'ports'):
            pass
            t_1.extend((
                '  ports: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'ports'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'env'):
            pass
            t_1.extend((
                '  env: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'env'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'envFrom'):
            pass
            t_1.extend((
                '  envFrom: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'envFrom'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'volumeMounts'):
            pass
            t_1.extend((
                '  volumeMounts: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'volumeMounts'))),
                '\n',
            ))
        if environment.getattr(l_1_c, 'resources'):
            pass
            t_1.extend((
                '  resources: ',
                escape(environment.finalize(environment.getattr(l_1_c, 'resources'))),
                '\n',
            ))
        for l_2_probe in ('readinessProbe', 'livenessProbe', 'startupProbe', 'securityContext', 'lifecycle'):
            _loop_vars = {}
            pass
            if environment.getitem(l_1_c, l_2_probe):
                pass
                t_1.extend((
                    '  ',
                    escape(environment.finalize(l_2_probe)),
                    ': ',
                    escape(environment.finalize(environment.getitem(l_1_c, l_2_probe))),
                    '\n',
                ))
        l_2_probe = missing
        return concat(t_1)
    context.exported_vars.add('container')
    context.vars['container'] = l_0_container = Macro(environment, macro, 'container', ('c',), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_extras):
        t_2 = []
        if l_1_extras is missing:
            l_1_extras = undefined("parameter 'extras' was not provided", name='extras')
        pass
        for (l_2_key, l_2_value) in environment.call(context, environment.getattr(l_1_extras, 'items')):
            _loop_vars = {}
            pass
            t_2.extend((
                escape(environment.finalize(l_2_key)),
                ': ',
                escape(environment.finalize(l_2_value)),
                '\n',
            ))
        l_2_key = l_2_value = missing
        return concat(t_2)
    context.exported_vars.add('pod_extras')
    context.vars['pod_extras'] = l_0_pod_extras = Macro(environment, macro, 'pod_extras', ('extras',), False, False, False, context.eval_ctx.autoescape)

blocks = {}
debug_info = '1=12&2=19&3=21&4=24&5=28&7=31&8=35&10=38&11=42&13=45&14=49&16=52&17=56&19=59&20=63&22=66&23=70&25=73&26=77&28=80&29=83&30=87&34=96&35=101&36=105'
# Generated from envspec/templates/_container.j2 by `python -m envspec.render.precompile`: do not edit.
