"""Unit tests of dev_protocol.py's parts that need no data (run by scripts/test.sh)."""

import unittest
from pathlib import Path

import dev_protocol as dp

PARAMS = Path(__file__).resolve().parent / "params.toml"


class DevParams(unittest.TestCase):
    def test_the_release_params_lose_exactly_the_two_left_out_sources(self):
        text = PARAMS.read_text(encoding="utf-8")
        out = dp.dev_params(text)
        self.assertNotIn("phishstorm-2016.txt", out)
        self.assertNotIn("jpcert-2024.txt", out)
        for kept in ("jpcert-2019.txt", "jpcert-2023.txt", "tranco-top100k-domains.txt", "debian-urls.txt"):
            self.assertIn(kept, out)
        self.assertEqual(out.count("[[data.sources]]"), text.count("[[data.sources]]") - 2)
        # Everything after the sources is untouched.
        self.assertEqual(out[out.index("[model]"):], text[text.index("[model]"):])

    def test_a_source_whose_file_line_is_not_first_is_refused(self):
        text = '[data]\ndir = "x"\n[[data.sources]]\nmax_rows = 4\nfile = "a/jpcert-2024.txt"\n[model]\n'
        with self.assertRaises(SystemExit):
            dp.dev_params(text)


class RocAuc(unittest.TestCase):
    def test_ranks_with_ties_count_half(self):
        self.assertEqual(dp.roc_auc([0.9, 0.8], [0.1, 0.2]), 1.0)
        self.assertEqual(dp.roc_auc([0.1], [0.9]), 0.0)
        # Four pairs, one a tie: (0.5 + 0 + 1 + 0) / 4.
        self.assertAlmostEqual(dp.roc_auc([0.5, 0.9], [0.5, 0.95]), 0.25 + 0.125)

    def test_the_threshold_and_share_helpers(self):
        self.assertAlmostEqual(dp.share([0.1, 0.6, 0.7], lambda s: s >= 0.5), 2 / 3)
        self.assertEqual(dp.share([], lambda s: True), 0.0)


class Wrapped(unittest.TestCase):
    def test_each_wrapper_carries_the_url_once_raw_or_escaped(self):
        for w in dp.wrapped("paypal.example.top/a?b=1&c=2"):
            self.assertTrue(w.startswith("https://"), w)
            self.assertTrue(
                "https://paypal.example.top/a?b=1&c=2" in w
                or "https%3A%2F%2Fpaypal.example.top%2Fa%3Fb%3D1%26c%3D2" in w,
                w,
            )
        self.assertEqual(len(dp.wrapped("a.example")), 3)


if __name__ == "__main__":
    unittest.main()
