"""RealisDance-DiT (arXiv 2504.14977): the authors' Wan2.1-I2V-14B successor, driven by the
SMPL-CS and HaMeR videos `rdance render-poses` makes."""
