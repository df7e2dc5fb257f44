"""pytest runs the chapter notebooks (nbval) in quick mode unless METAFORMER_MODE says otherwise."""
import os

# Set before nbval starts the kernels, which inherit this process's environment.
os.environ.setdefault("METAFORMER_MODE", "quick")
