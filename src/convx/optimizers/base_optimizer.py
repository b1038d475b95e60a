"""The optimizer base class: Keras 3's ``BaseOptimizer`` steps around the update rule.

A model keeps all trainable weights in one contiguous float32 buffer and all
gradients in a matching one, so a training step is ``update_flat(params,
grads)``: one C kernel call for the rule, plus one per enabled common step
(loss-scale division, gradient accumulation, clipping, weight decay, moving
average). Optimizer state lives in flat buffers too; per variable it is seen
through views, in Keras' variable order (``variables``) so that saving can store
it as Keras does. ``apply_gradients`` / ``apply`` work on separate variables.
"""

import re
import warnings

import numpy as np

from convx._kernels import optimizers as _k
from convx._signals import deferred_signals
from convx.layers.base import to_snake_case, unique_name
from convx.optimizers import schedules as _schedules
from convx.optimizers._arguments import check_base_arguments, check_learning_rate, serialize_callable


class _Segment:
    """One model variable's place in the flat buffers."""

    def __init__(self, variable, offset, index):
        self.index = index
        self.shape = tuple(getattr(variable, "shape", np.shape(variable)))
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.offset = offset
        self.key = id(variable)
        self.name = str(getattr(variable, "name", "variable"))
        self.path = str(getattr(variable, "path", self.name))
        self.slice = slice(offset, offset + self.size)


class Optimizer:
    """Base class of the optimizers (Keras 3 arguments, defaults and step order).

    Parameters
    ----------
    learning_rate : float, LearningRateSchedule or callable
        A schedule is called with the step counter, a plain callable with no
        argument (Keras' rule), at every update.
    weight_decay : float or None
        Decoupled decay ``w -= w * weight_decay * lr`` before each update.
    clipnorm, clipvalue, global_clipnorm : float or None
        At most one: clip each variable's gradient to this L2 norm, each
        gradient element to ``[-clipvalue, clipvalue]``, or all gradients
        together to this global norm.
    use_ema : bool, ema_momentum : float, ema_overwrite_frequency : int or None
        Keep an exponential moving average of the weights; ``fit`` writes it
        into the weights at the end (``finalize_variable_values``).
    loss_scale_factor : float or None
        Gradients are divided by it before anything else.
    gradient_accumulation_steps : int >= 2 or None
        Update every that many calls with the mean of the gradients since the
        previous update.
    name : str or None
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        check_base_arguments(weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                             ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps)
        self.name = name if name is not None else unique_name(to_snake_case(type(self).__name__))
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum = bool(use_ema), ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._iterations = 0
        self._learning_rate = np.float32(0.0)
        self.learning_rate = learning_rate
        self._exclude_ids, self._exclude_pattern = set(), None
        self.reset_state()

    # ----- step counter and learning rate -----------------------------------------------------------------------

    @property
    def iterations(self):
        """Number of updates applied (calls // gradient_accumulation_steps when accumulating)."""
        steps = self.gradient_accumulation_steps
        return self._iterations // steps if steps else self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value)

    @property
    def learning_rate(self):
        """The current learning rate as float32; assignable (a number, a schedule or a callable)."""
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            return np.float32(lr(self._iterations))
        if callable(lr):
            return np.float32(lr())
        return lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, _schedules.LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, _schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its `learning_rate` "
                "constructor argument, hence its learning rate is not settable. If you need the learning rate "
                "to be settable, you should instantiate the optimizer with a float `learning_rate` argument."
            )
        self._learning_rate = np.float32(check_learning_rate(value))

    # ----- building the state ------------------------------------------------------------------------------------

    def _slot_specs(self):
        """The per-variable state in Keras' build order: groups of (name, initial value); Keras creates
        each group's slots variable by variable (interleaved), one group after the other."""
        return ()

    def reset_state(self):
        """Forget the per-variable state (a model calls this when it rebuilds its weight buffer)."""
        self.built = False
        self._segments, self._total = [], 0
        self._slots, self._average, self._accumulator, self._scratch = (), None, None, None
        self._flat_views = None

    def build(self, variables):
        """Create the state for ``variables`` (model Variables or arrays), in their order, as Keras does."""
        if self.built:
            return
        offset, self._segments = 0, []
        for index, variable in enumerate(variables):
            segment = _Segment(variable, offset, index)
            self._segments.append(segment)
            offset += segment.size
        self._total = offset
        dtype = self._dtype = np.float64 if variables and _value(variables[0]).dtype == np.float64 else np.float32
        self._slot_groups = [len(group) for group in self._slot_specs()]
        specs = [spec for group in self._slot_specs() for spec in group]
        self._slots = tuple(np.full(self._total, init, dtype=dtype) for _, init in specs)
        self._average = np.zeros(self._total, dtype) if self.use_ema else None
        self._accumulator = np.zeros(self._total, dtype) if self.gradient_accumulation_steps else None
        needs_copy = self.loss_scale_factor is not None or self._accumulator is not None or self._clips()
        self._scratch = np.empty(self._total, dtype) if needs_copy else None
        self._decayed = [self._use_weight_decay(s) for s in self._segments]
        # per-variable clipping or decay of only some variables make the flat step run variable by variable
        self._per_variable = bool(self.clipnorm) or (self.weight_decay is not None and not all(self._decayed))
        self._variables = list(variables)
        self.built = True

    def _assign_flat_slots(self, slots):
        """Copy saved slots into this built optimizer: one float array per slot over the flat trainable
        weights, as convx's first ``.keras`` format stored them.

        Raises
        ------
        ValueError
            When their number or shapes differ from this optimizer's slots.
        """
        if len(slots) != len(self._slots) or any(s.shape != (self._total,) for s in slots):
            raise ValueError(f"{len(slots)} arrays of shapes {[s.shape for s in slots]}, expected "
                             f"{len(self._slots)} of ({self._total},)")
        for target, saved in zip(self._slots, slots):
            target[...] = saved

    def _clips(self):
        return bool(self.clipnorm or self.clipvalue or self.global_clipnorm)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exempt variables from weight decay: these ones, or those whose name contains one of ``var_names``."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, segment):
        if segment.key in self._exclude_ids:
            return False
        return self._exclude_pattern is None or self._exclude_pattern.search(segment.name) is None

    # ----- updates -----------------------------------------------------------------------------------------------

    def update_flat(self, params, grads):
        """One step on a model's flat weight and gradient buffers (1-D float arrays of equal size).

        Builds the state on first use (as one variable, unless ``build`` was called
        with the model's variables).
        """
        if not self.built:
            self.build([params])
        if params.size != self._total:
            raise ValueError(
                f"update_flat got {params.size} parameters but the optimizer was built for {self._total}; "
                "call reset_state() (or use a new optimizer) for a different set of variables"
            )
        if self._flat_views is None or self._flat_views[0] is not params:
            self._flat_views = (params, self._parts(params))
        self._step(self._flat_views[1] if self._per_variable else [(None, params)], grads)

    def apply_gradients(self, grads_and_vars):
        """Keras' ``apply_gradients([(grad, variable), ...])``: one step for all of them."""
        grads, variables = zip(*grads_and_vars)
        self.apply(grads, variables)
        return self._iterations

    def apply(self, grads, trainable_variables=None):
        """Keras' ``apply(grads, trainable_variables)``: builds on the first call, then one step."""
        if len(grads) == 0:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer must already be built "
                                 "on a list of variables. Call `optimizer.build(trainable_variables)` first.")
            if len(grads) != len(self._segments):
                raise ValueError(f"Received {len(grads)} gradients, but the optimizer is tracking "
                                 f"{len(self._segments)} trainable variables.")
            trainable_variables = self._variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        index = {s.key: s for s in self._segments}
        parts, grad_flat = [], np.zeros(self._total, self._dtype)
        for grad, var in zip(grads, trainable_variables):
            segment = index.get(id(var))
            if segment is None:
                raise ValueError(f"Unknown variable: {var}. This optimizer can only be called for the variables "
                                 "it was originally built with. When working with a new set of variables, you "
                                 "should recreate a new optimizer instance.")
            param = _value(var)
            if np.shape(grad) != param.shape:
                raise ValueError(f"gradient of shape {np.shape(grad)} does not match variable of shape {param.shape}")
            if not param.flags.c_contiguous:
                raise ValueError(f"variable {segment.path} must be C-contiguous because it is updated in place")
            grad_flat[segment.slice] = np.ravel(grad)
            parts.append((segment, param.reshape(-1)))
        self._step(parts, grad_flat)

    def _parts(self, params):
        return [(s, params[s.slice]) for s in self._segments]

    def _step(self, parts, grads):
        """Keras' apply(): unscale, accumulate, clip, decay, update, moving average, count; signals wait
        until all of it is done (weights, moments and ``iterations`` change together)."""
        with deferred_signals():
            self._step_now(parts, grads)

    def _step_now(self, parts, grads):
        if self._scratch is not None:
            grads = self._transform_gradients(grads)
        if grads is not None:
            lr = float(self.learning_rate)
            step = self.iterations + 1
            self._clip_gradients(parts, grads)
            self._apply_weight_decay(parts, lr)
            self._update_parts(parts, grads, lr, step)
        if self.use_ema:
            self._update_average(parts)
        self._iterations += 1

    def _transform_gradients(self, grads):
        """Unscaled (and accumulated) gradients in the scratch buffer, or None on an accumulation-only call."""
        scratch = self._scratch
        if self.loss_scale_factor is not None:
            np.divide(grads, np.asarray(self.loss_scale_factor, scratch.dtype), out=scratch)
        else:
            np.copyto(scratch, grads)
        steps = self.gradient_accumulation_steps
        if steps:
            if (self._iterations + 1) % steps:
                _k.accumulate_gradients(self._accumulator, scratch)
                return None
            _k.accumulate_gradients(self._accumulator, scratch, scratch, steps)
        return scratch

    def _clip_gradients(self, parts, grads):
        if self.clipnorm and self.clipnorm > 0:
            for segment, _ in parts:
                g = grads[segment.slice]
                norm = np.sqrt(_k.sum_squares(g))
                np.multiply(g, np.asarray(self.clipnorm / max(norm, self.clipnorm), g.dtype), out=g)
        elif self.global_clipnorm and self.global_clipnorm > 0:
            norm = np.sqrt(_k.sum_squares(grads))
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = self.global_clipnorm * min(1.0 / norm, 1.0 / self.global_clipnorm) + (norm - norm)
            np.multiply(grads, np.asarray(scale, grads.dtype), out=grads)
        elif self.clipvalue and self.clipvalue > 0:
            np.clip(grads, -self.clipvalue, self.clipvalue, out=grads)

    def _apply_weight_decay(self, parts, lr):
        if self.weight_decay is None:
            return
        for segment, param in parts:
            if segment is None or self._decayed[segment.index]:
                _k.weight_decay_update(param, self.weight_decay, lr)

    def _update_parts(self, parts, grads, lr, step):
        for segment, param in parts:
            if segment is None:
                self._update_step(param, grads, self._slots, lr, step)
            else:
                self._update_step(param, grads[segment.slice], [s[segment.slice] for s in self._slots], lr, step)

    def _update_step(self, param, grad, slots, lr, step):
        """One rule update of ``param`` (a flat view) with its ``slots`` views; subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement _update_step")

    def _update_average(self, parts):
        momentum = self.ema_momentum if self.iterations != 0 else 0.0
        for segment, param in parts:
            average = self._average if segment is None else self._average[segment.slice]
            _k.ema_update(average, param, momentum)
        frequency = self.ema_overwrite_frequency
        if frequency and (self.iterations + 1) % frequency == 0:
            for segment, param in parts:
                np.copyto(param, self._average if segment is None else self._average[segment.slice])

    def finalize_variable_values(self, var_list):
        """With ``use_ema``, write the moving averages into ``var_list`` (what ``fit`` does at the end)."""
        if not self.use_ema or not self.built:
            return
        if len(var_list) != len(self._segments):
            raise ValueError(f"The length of model variables ({len(var_list)}) to override does not match the "
                             f"length of model variables stored in the optimizer ({len(self._segments)}).")
        for var, segment in zip(var_list, self._segments):
            np.copyto(_value(var), self._average[segment.slice].reshape(segment.shape))

    def scale_loss(self, loss):
        """``loss * loss_scale_factor`` (or ``loss``), as a custom training step scales it."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    # ----- state as Keras lists it --------------------------------------------------------------------------------

    def _extra_variables(self):
        """(getter, setter) pairs of state Keras adds after the slots (Nadam's u_product)."""
        return []

    def _variable_accessors(self):
        entries = [(lambda: np.asarray(self._iterations, np.int64),
                    lambda v: setattr(self, "_iterations", int(np.asarray(v))))]
        if not callable(self._learning_rate):
            entries.append((lambda: np.asarray(self._learning_rate, np.float32),
                            lambda v: setattr(self, "_learning_rate", np.float32(np.asarray(v)))))
        if self.built:
            per_variable = [self._average] if self.use_ema else []
            per_variable += [self._accumulator] if self.gradient_accumulation_steps else []
            for buffer in per_variable:
                entries += [_view_accessor(buffer, s) for s in self._segments]
            start = 0
            for size in self._slot_groups:
                group = self._slots[start:start + size]
                entries += [_view_accessor(slot, s) for s in self._segments for slot in group]
                start += size
            entries += self._extra_variables()
        return entries

    @property
    def variables(self):
        """The state in Keras 3's order: iterations, the learning rate (unless a schedule/callable), then
        per variable the moving averages, the gradient accumulators, then the rule's slots (interleaved
        per variable as Keras builds them). Slots are writeable views of the flat state."""
        return [get() for get, _ in self._variable_accessors()]

    def variable_count(self):
        """Scalars in ``variables`` (the "Optimizer params" of a model summary)."""
        return sum(int(np.size(v)) for v in self.variables)

    def get_weights(self):
        return [np.array(v) for v in self.variables]

    def set_weights(self, weights):
        """Set the state from arrays in ``variables`` order (the optimizer must be built)."""
        if not self.built:
            raise ValueError("You are calling `set_weights()` on an optimizer that has not yet been built. Please "
                             "call `optimizer.build(trainable_variables)` to create the optimizer weights before "
                             "calling `set_weights()`.")
        accessors = self._variable_accessors()
        for (get, put), weight in zip(accessors, weights):
            if np.shape(get()) != np.shape(weight):
                raise ValueError(f"Optimizer variable has shape {np.shape(get())} not compatible with provided "
                                 f"weight shape {np.shape(weight)}.")
            put(weight)

    def save_own_variables(self, store):
        for i, value in enumerate(self.variables):
            store[str(i)] = np.array(value)

    def load_own_variables(self, store):
        if len(store.keys()) != len(self.variables):
            warnings.warn(f"Skipping variable loading for optimizer '{self.name}', because it has "
                          f"{len(self.variables)} variables whereas the saved optimizer has {len(store.keys())} "
                          "variables.", stacklevel=2)
            return
        for (_, put), i in zip(self._variable_accessors(), range(len(store.keys()))):
            put(np.asarray(store[str(i)]))

    # ----- config ------------------------------------------------------------------------------------------------

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        elif callable(lr):
            lr = serialize_callable(lr)
        else:
            lr = float(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"], custom_objects=custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, iterations={self.iterations}>"


def _value(variable):
    return variable.value if hasattr(variable, "value") else variable


def _view_accessor(buffer, segment):
    view = buffer[segment.slice].reshape(segment.shape)
    return (lambda: view, lambda v: np.copyto(view, np.asarray(v).reshape(segment.shape), casting="same_kind"))
