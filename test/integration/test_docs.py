"""Generated documentation and the layer rule stay true to the code."""
import os
import subprocess
import sys
import unittest

ROOT = os.environ.get("CAIRN_ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class DocsTest(unittest.TestCase):
    def test_errors_md_is_generated_from_the_table(self):
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "docs", "gen_errors.py"), "--check"])
        self.assertEqual(proc.returncode, 0, "docs/errors.md is stale: run docs/gen_errors.py")

    def test_includes_respect_the_layer_order(self):
        proc = subprocess.run(["sh", os.path.join(ROOT, "test", "check_layers.sh")], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
