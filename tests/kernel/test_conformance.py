"""The agent kernel against the standard kernel conformance suite (jupyter_kernel_test).

It claims kernel_info (language: markdown), is_complete, history-less execution and no
completion, inspection or pager; the suite's tests for those are therefore not configured.
"""

from __future__ import annotations

import unittest

import jupyter_kernel_test


class OpenFoalKernelTests(jupyter_kernel_test.KernelTests):
    """Conformance of the ``openfoal`` kernel spec."""

    kernel_name = "openfoal"
    language_name = "markdown"
    file_extension = ".md"
    complete_code_samples = ["what is in data.csv?", "summarise\nthis"]


if __name__ == "__main__":
    unittest.main()
