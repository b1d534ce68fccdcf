/*
 * keras.h — Keras model.to_json() documents <-> fitd's native model JSON.
 *
 * keras_to_native converts the document Keras writes for a Sequential model
 * (Keras 3.0-3.3, 3.4-3.12 and 3.13+;
 * tf.keras up to 2.12 and 2.13+; the old form whose "config" is a bare list of
 * layers) into the native "model" object spec.h describes, so that spec.c
 * validates one form. It reports, with JSON Pointers into the Keras document,
 * whatever fitd cannot honour (another model class, a layer other than
 * InputLayer / Dense / Dropout, a non-float32 dtype, constraints, noise_shape,
 * non-trainable layers, sparse or ragged inputs, LoRA, quantization, ...): never
 * silently dropped. The values it maps (units, activation, use_bias,
 * initializers, regularizers, rate, seed, name) are copied as written and left
 * to spec.c, whose problems keras_map_problems then points back into the Keras
 * document. Penalties are kept as written (tf.keras' float32-widened
 * 0.0010000000474974513 included). Ignored on purpose: the model's own name,
 * "keras_version", "backend", "build_config" and "compile_config" (the job's
 * compile block governs).
 *
 * keras_model_to_json renders a model as the Keras 3 document (the 3.4-3.12
 * key structure, which later releases read too; 3.0-3.3 wrote the dtype as a
 * string and were not checked against it), with initializer seeds,
 * so that keras.models.model_from_json rebuilds it; converting that document
 * back gives the same model.
 *
 * No state; every call is thread-safe on distinct arguments. json_t arguments
 * are borrowed.
 */
#ifndef FITD_KERAS_H
#define FITD_KERAS_H

#include <jansson.h>

#include "nn.h"
#include "spec.h"

/* Where each part of the native form came from in the Keras document. */
typedef struct keras_map keras_map;

/* 1 when `model` looks like a Keras document (an object with "class_name"),
 * 0 otherwise (then it is the native form). */
int keras_is_document(const json_t *model);

/* Convert `doc`, found at JSON Pointer `base` ("/model"), to the native form.
 * Problems are appended to `pr` (pointers into the Keras document). On return
 * 0, *native holds a native model object (json_decref it) and *map the pointer
 * map (keras_map_free it) — both even when problems were found, so that the
 * native validation can report its own. Returns -1 when out of memory (*native
 * and *map NULL). */
int keras_to_native(const json_t *doc, const char *base, json_t **native, keras_map **map,
                    spec_problems *pr);

/* Rewrite the pointers of pr->items[from..] that name a place in the native form
 * produced by keras_to_native into the Keras document's pointers. map may be
 * NULL (nothing to do). */
void keras_map_problems(const keras_map *map, spec_problems *pr, int from);

/* NULL is fine. */
void keras_map_free(keras_map *map);

/* The model as a Keras 3 model.to_json() document. Returns a new reference
 * (json_decref it), or NULL when out of memory. */
json_t *keras_model_to_json(const nn_model_spec *model);

#endif
