"""Every config field, its default and its meaning: an eVAE on
scikit-learn's bundled 8x8 digits (runs anywhere).

Every config starts from this one (``configs/default.py`` re-exports it) and
overrides a few fields. It lives in the library, not in ``configs/``, so that
the library checks configs without importing the top-level ``configs``
folder, which is not installed with the package.
"""

import ml_collections


def get_config():
  """Returns the default configuration."""
  config = ml_collections.ConfigDict()
  config.seed = 0  # the training seed (initialisation, noise, shuffles)

  config.data = ml_collections.ConfigDict()
  config.data.name = 'digits'  # digits | idx | npz | tfd | mnist |
  #   fashion_mnist | binarized_mnist
  config.data.path = ''  # IDX directory (name=idx), your .npz with train /
  #   test (/ valid) image arrays (name=npz) or TFD_48x48.mat (name=tfd)
  config.data.data_dir = ''  # tfds data_dir; '' = tfds default
  config.data.binarization = 'dynamic'  # none | dynamic | fixed
  config.data.num_valid = 200  # carved out of the training split
  config.data.split_seed = 0  # fixed, so seeds of one sweep share splits
  config.data.valid_from = 'random'  # random (seeded by split_seed) | end (the
  #   last num_valid training images, unshuffled: Burda et al.'s split)
  config.data.tfd_fold = 0  # name=tfd: which of the standard folds
  config.data.tfd_include_unlabeled = True  # name=tfd: train on the
  #   unlabeled images too
  config.data.download_timeout = 5.0  # seconds to wait for tfds' network

  config.model = ml_collections.ConfigDict()
  config.model.kind = 'evae'  # evae | vae (D = K = s) |
  #   mvae (E VAEs of K units)
  config.model.latent_dim = 16  # D
  config.model.epitome_size = 4  # K
  config.model.stride = 0  # s; 0 = K (non-overlapping)
  config.model.network = 'mlp'  # mlp (the paper: Dense layers on flat
  #   images) | conv (strided convolutions, then the Dense layers; for
  #   colour (H, W, 3) or grey-scale images; evae_jax/models/conv.py)
  config.model.conv_channels = (32, 64)  # network=conv: channels of each
  #   stride-2 convolution (the decoder mirrors them with transposed ones)
  config.model.conv_kernel_size = 4  # network=conv: k x k kernels, k = 3 or 4
  config.model.num_layers = 1  # L (network=conv: Dense layers after the
  #   convolutions)
  config.model.hidden_dim = 200  # H
  config.model.likelihood = 'bernoulli'  # bernoulli | gaussian
  config.model.min_logvar = -7.0  # Gaussian decoder log-variance bounds
  config.model.max_logvar = 2.0  # (min_logvar and max_logvar clip it)
  config.model.mvae_hidden_dim = 0  # 0 = match the eVAE's parameter count
  config.model.activation = 'relu'  # relu (the paper) | tanh (Burda et al.)
  config.model.kernel_init = 'lecun_normal'  # lecun_normal (Flax) |
  #   glorot_uniform
  config.model.dtype = 'float32'  # float32 | bfloat16: the networks' matmul
  #   inputs (accumulated in float32; parameters, optimizer, log-densities,
  #   KL and the choice of y* stay float32); evaluation uses eval.dtype
  config.model.output_bias_init = 'zeros'  # zeros | train_mean: logit of the
  #   per-pixel training mean, clipped to [0.001, 0.999] (Burda et al.)

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 100  # schedule=constant: the budget
  config.train.batch_size = 100  # B, split over the devices
  config.train.learning_rate = 1e-3  # schedule=constant (burda sets its own)
  config.train.optimizer = 'adam'  # adam (optax) | burda_adam (Burda et al.:
  #   second moments start at 1, eps added to sqrt(v); see
  #   evae_jax/state/optimizers.py)
  config.train.adam_b1 = 0.9  # Adam's beta_1
  config.train.adam_b2 = 0.999  # Adam's beta_2
  config.train.adam_eps = 1e-8  # Adam's epsilon
  config.train.kl_weight = 1.0  # lambda of paper §3.1
  config.train.num_seeds = 1  # >1: that many models at once under jax.vmap
  config.train.kl_weights = ()  # non-empty: one model per lambda, vmapped
  config.train.z_dropout_rate = 0.0  # dropout VAE of paper §3.2
  config.train.objective = 'point'  # point (eq. 7) | logsumexp | iwae |
  #   iwae_marginal (importance-weighted, k = train.num_samples); the
  #   registry is evae_jax/objectives/registry.py
  config.train.num_samples = 1  # k of the iwae objectives
  # Over-pruning remedies: they change only what is optimised; every bound,
  # IW estimate and metric reported stays the true ELBO / log-likelihood.
  config.train.free_bits = 0.0  # lambda nats of free bits (Kingma et al.,
  #   2016): each unit's (group's) training KL is max(lambda, its minibatch
  #   mean KL), over the units of the chosen epitome; 0 = off
  config.train.free_bits_group = 1  # latent units per free-bits group;
  #   must divide the number of latent units (1 = per unit)
  config.train.kl_warmup_steps = 0  # KL warm-up: the KL weight rises
  #   linearly over this many (global) steps; 0 = off
  config.train.kl_warmup_start = 0.0  # warm-up starts at this fraction of
  #   train.kl_weight (0 = from a plain autoencoder's loss)
  config.train.assignment = 'step'  # step: y* every step | epoch: Algorithm 1
  config.train.assignment_samples = 1  # noise draws averaged by Algorithm 1's
  #   per-epoch assignment
  config.train.schedule = 'constant'  # constant | burda (Table 2)
  config.train.burda_stages = 8  # burda: stage i has 3^i epochs
  config.train.checkpoint_every_steps = 0  # 0 = at the end of every epoch
  config.train.max_chunk_steps = 0  # steps per jitted scan; 0 = to the next
  #   epoch end or checkpoint, 1 = the step-by-step path (debugging)
  config.train.num_devices = 0  # data-parallel mesh size; 0 = all devices
  config.train.distributed = False  # several processes:
  #   jax.distributed.initialize()
  # An explicit launch (every process runs the same command, each with its
  # own id); empty/0/-1 = the JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
  # JAX_PROCESS_ID environment variables, or else JAX's detection (TPU pod,
  # SLURM). See experiments/README.md, "Several processes".
  config.train.coordinator_address = ''  # host:port of process 0
  config.train.num_processes = 0  # how many processes in all
  config.train.process_id = -1  # this process's id, 0 .. num_processes-1
  config.train.initialization_timeout = 120  # seconds to wait for every
  #   process to connect before a clear error (a wrong count or id)
  config.train.keep_checkpoints = 3  # the newest N steps kept
  config.train.eval_every_epochs = 1  # validation bound every N epochs
  config.train.progress_bar = True  # tqdm, on a terminal only
  config.train.overwrite = False  # allow a different config in a used workdir

  config.eval = ml_collections.ConfigDict()
  config.eval.split = 'test'  # test | valid | train: what --mode=evaluate
  #   scores
  config.eval.dtype = 'float32'  # float32 | bfloat16 | train (model.dtype):
  #   the networks' dtype in --mode=evaluate/sample and per-epoch validation
  config.eval.batch_size = 100  # images per evaluation batch
  config.eval.num_examples = 0  # 0 = the whole split
  config.eval.iw_samples = 5000  # k of L_k (paper Table 2)
  config.eval.iw_chunk = 100  # importance samples per pass (memory)
  config.eval.iw_num_examples = 0  # 0 = the whole split
  config.eval.active_threshold = 0.02  # A_u > threshold (paper §3)
  config.eval.mi_num_examples = 0  # mutual information on the first N
  #   examples (its cost grows as N^2); 0 = the whole split
  config.eval.parzen_samples = 10000  # model samples in the Parzen window
  config.eval.parzen_valid = 1000  # validation images that choose sigma
  config.eval.parzen_sigma_min_log10 = -1.0  # Parzen sigma candidates:
  #   logspace(min, max, num_sigmas)
  config.eval.parzen_sigma_max_log10 = 0.0  # (see parzen_sigma_min_log10)
  config.eval.parzen_num_sigmas = 10  # (paper: logspace(-1, 0, 10))
  config.eval.num_image_samples = 100  # images in the PNG grids
  config.eval.quick = False  # True: a first look in seconds, NOT the paper's
  #   protocol: IW with k <= 100 on <= 500 examples, mutual information on
  #   <= 2,000, Parzen with <= 1,000 samples, <= 200 validation images and
  #   <= 4 sigmas (evaluate.quick.QUICK; the bounds and active units stay on
  #   every example), written to
  #   eval_quick.json, eval_examples_quick.npz and report_quick.md so that a
  #   full evaluation's eval.json is never replaced
  return config
