"""Entry point of the agent kernel: ``python -m openfoal_kernel -f CONNECTION_FILE``."""

from __future__ import annotations


def main() -> None:
    """Launch the kernel application with the OpenFoal kernel class."""
    from ipykernel.kernelapp import IPKernelApp

    from .kernel.kernel import OpenFoalKernel

    IPKernelApp.launch_instance(kernel_class=OpenFoalKernel)


if __name__ == "__main__":
    main()
