# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Where does the Hopf normal form oscillate?
#
# The Hopf normal form has a stable limit cycle of radius $\sqrt{\mu}$ when $\mu > 0$ and a
# stable focus otherwise. We sample $(\mu, \omega)$, simulate, label each run with the
# `oscillates` property, and learn the boundary with an SVM.

# %%
import jax.numpy as jnp
import numpy as np

from scimlkit import fit
from scimlkit.fit.explore import amplitude, classify_outcomes, oscillates, sensitivity


def hopf(t, y, p):
    x, z = y
    r2 = x * x + z * z
    return jnp.stack([p["mu"] * x - p["omega"] * z - x * r2, p["omega"] * x + p["mu"] * z - z * r2])


model = fit.ODEModel(hopf, ["x", "z"])
params = [fit.Parameter("mu", bounds=(-1.0, 1.0)), fit.Parameter("omega", bounds=(0.5, 2.0))]
t = np.linspace(0.0, 60.0, 601)
clf = classify_outcomes(model, params, oscillates("x"), t=t, y0=[0.05, 0.0], n=800)
print(clf.summary())

# %%
_ = clf.plot_regions("mu", "omega")

# %% [markdown]
# Which parameter drives the amplitude? (It is $\sqrt{\mu}$ for $\mu > 0$: all of it is $\mu$.)

# %%
positive = [fit.Parameter("mu", bounds=(0.2, 1.0)), fit.Parameter("omega", bounds=(0.5, 2.0))]
indices = sensitivity(model, positive, amplitude("x"), t=t, y0=[0.05, 0.0], n=256)
print(indices.summary())
_ = indices.plot()
