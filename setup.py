"""Install gm_plugins.

The OpenMMLab stack is installed separately with ``make install`` (see
``requirements/``): several of its packages must be installed without their
declared dependencies and mmcv must be built with compiled ops.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list[str]:
    """Return the requirement lines of ``requirements/<name>`` without comments."""
    lines = (HERE / "requirements" / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_version() -> str:
    namespace: dict = {}
    exec((HERE / "gm_plugins" / "version.py").read_text(), namespace)
    return namespace["__version__"]


setup(
    name="gm_plugins",
    version=read_version(),
    description="Automated classification of infant General Movements on the OpenMMLab stack",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["gm_plugins", "gm_plugins.*"]),
    python_requires=">=3.11",
    install_requires=read_requirements("runtime.txt"),
    extras_require={"tests": read_requirements("tests.txt")},
    license="MIT",
)
