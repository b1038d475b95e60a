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

/* The other update rules share one entry point: `rule` picks the rule, `slots`
 * holds its state arrays in Keras' build order, `c` its scalars:
 *   CX_OPT_AMSGRAD  slots m, v, v_hat;  c = alpha (lr * sqrt(1 - b2^t) / (1 - b1^t)), 1 - b1, 1 - b2, eps
 *   CX_OPT_ADAMAX   slots m, u;         c = lr, 1 - b1, b2, eps, 1 - b1^t
 *   CX_OPT_NADAM    slots m, v;         c = lr, 1 - b1, 1 - b2, eps, u_{t+1}, 1 - prod_{t+1},
 *                                           1 - u_t, 1 - prod_t, 1 - b2^t
 *   CX_OPT_ADAGRAD  slots accumulator;  c = lr, eps
 *   CX_OPT_ADADELTA slots accumulated_grad, accumulated_delta_var; c = lr, rho, 1 - rho, eps
 *   CX_OPT_FTRL     slots accumulator, linear; c = lr, -learning_rate_power, l1,
 *                                           2 * (l2 + beta / (2 lr)), 2 * l2_shrinkage
 *   CX_OPT_LION     slots momentum;     c = lr, b1, b2 */
enum { CX_OPT_AMSGRAD = 1, CX_OPT_ADAMAX, CX_OPT_NADAM, CX_OPT_ADAGRAD, CX_OPT_ADADELTA, CX_OPT_FTRL,
       CX_OPT_LION };
void cx_opt_step_f32(int rule, float *w, const float *g, float **slots, cx_int n, const double *c,
                     int n_threads);
void cx_opt_step_f64(int rule, double *w, const double *g, double **slots, cx_int n, const double *c,
                     int n_threads);

/* Shared steps: w -= w * wd * lr; average = mu * average + (1 - mu) * w;
 * gradient accumulation (finish: out = (g + acc) / steps, acc = 0; else acc += g);
 * the sum of squares in double (independent of n_threads; -1 if out of memory). */
void cx_opt_weight_decay_f32(float *w, cx_int n, double weight_decay, double learning_rate, int n_threads);
void cx_opt_weight_decay_f64(double *w, cx_int n, double weight_decay, double learning_rate, int n_threads);
void cx_opt_ema_f32(float *average, const float *w, cx_int n, double momentum, int n_threads);
void cx_opt_ema_f64(double *average, const double *w, cx_int n, double momentum, int n_threads);
void cx_opt_accumulate_f32(float *acc, const float *g, float *out, cx_int n, int finish, double steps,
                           int n_threads);
void cx_opt_accumulate_f64(double *acc, const double *g, double *out, cx_int n, int finish, double steps,
                           int n_threads);
double cx_opt_sum_squares_f32(const float *x, cx_int n, int n_threads);
double cx_opt_sum_squares_f64(const double *x, cx_int n, int n_threads);

#endif
