from setuptools import find_packages, setup

LIBTPU = "libtpu==0.0.42.*"  # the libtpu of jax 0.10.2

setup(
    name="vlm_jax",
    version="0.1.0",
    description="Inference-optimal vision-language models in JAX/Flax",
    packages=find_packages(include=["vlm_jax", "vlm_jax.*"]),
    package_data={"vlm_jax": ["assets/*", "assets/**/*", "scaling/*.json"]},
    python_requires=">=3.10",
    install_requires=[
        "jax==0.10.2",
        "flax>=0.12",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11",
        "transformers>=4.50",
        "safetensors>=0.4",
        "grain>=0.2.10",
        "ml-collections>=1.0",
        "absl-py",
        "numpy",
        "scipy",
        "pillow",
        "tokenizers",
        "tqdm",
        "tensorboardX",
        "matplotlib",
        "easy-vqa",
        "openpyxl",
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "torch==2.13.0"],
        "tfds": ["tensorflow-datasets"],
        # libtpu alone: compiling for TPU slices on any Linux host (vlm-jax compile)
        "aot": [LIBTPU],
        # gs:// workdirs: gcsfs for etils.epath (orbax, config.json), google-cloud-storage
        # for tensorboardX event files
        "tpu": [LIBTPU, "gcsfs", "google-cloud-storage"],
    },
    entry_points={"console_scripts": ["vlm-jax=vlm_jax.cli:main"]},
)
