"""genesis.nn.functional: the neural-network ops (PyTorch's `torch.nn.functional`).

Each family lives in its own module; this package re-exports them.
"""
from ...ops import (elu, gelu, leaky_relu, log_softmax, one_hot, pad, relu, sigmoid, silu,
                    softmax, softplus, tanh)
from .linear import linear
from .dropout import dropout, dropout2d
from .normalization import batch_norm, group_norm, layer_norm, normalize
from .conv import conv1d, conv2d, conv_transpose2d
from .pooling import adaptive_avg_pool2d, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                   huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from .sparse import embedding
from .rnn import gru_cell, lstm_cell, rnn_relu_cell, rnn_tanh_cell
from .attention import multi_head_attention_forward, scaled_dot_product_attention
from .upsampling import interpolate
