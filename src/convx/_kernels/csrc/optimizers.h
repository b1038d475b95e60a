/* Optimizer updates (Keras 3 rules), in place on flat C-contiguous arrays of
 * n elements. All arrays passed to one call are distinct (no aliasing: the
 * Python wrapper rejects overlapping arrays). Hyper-parameters arrive as double
 * and are rounded to the array precision, as Keras casts them to the variable
 * dtype. See docs/kernels.md, section "optimizers".
 */
#ifndef CONVX_OPTIMIZERS_H
#define CONVX_OPTIMIZERS_H

#include "convx_common.h"

/* velocity is neither read nor written when it is NULL or momentum == 0. */
void cx_sgd_update_f32(float *w, const float *g, float *velocity, cx_int n,
                       double learning_rate, double momentum, int nesterov, int n_threads);
void cx_sgd_update_f64(double *w, const double *g, double *velocity, cx_int n,
                       double learning_rate, double momentum, int nesterov, int n_threads);

/* step >= 1 is the 1-based iteration that the bias corrections use. */
void cx_adam_update_f32(float *w, const float *g, float *m, float *v, cx_int n,
                        double learning_rate, double beta_1, double beta_2, double epsilon,
                        int64_t step, int n_threads);
void cx_adam_update_f64(double *w, const double *g, double *m, double *v, cx_int n,
                        double learning_rate, double beta_1, double beta_2, double epsilon,
                        int64_t step, int n_threads);

/* momentum_buffer is used iff it is non-NULL (the caller passes NULL when
 * momentum == 0); the centered variant runs iff average_grad is non-NULL. */
void cx_rmsprop_update_f32(float *w, const float *g, float *velocity, float *momentum_buffer,
                           float *average_grad, cx_int n, double learning_rate, double rho,
                           double momentum, double epsilon, int n_threads);
void cx_rmsprop_update_f64(double *w, const double *g, double *velocity, double *momentum_buffer,
                           double *average_grad, cx_int n, double learning_rate, double rho,
                           double momentum, double epsilon, int n_threads);

#endif
