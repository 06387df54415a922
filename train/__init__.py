"""Training-side tools: data preparation (``train.prepare``), pseudo-target stylizers, the
Johnson et al. style network and the paired torch dataset (``train.dataset``)."""
