"""A manifest the cluster could not run fails the shim check: each broken case once, under the
real shim (see shim_check.py; skipped outside CI when its tools are missing)."""

import copy
import unittest

import check
import shim_check


def only(docs, *names):
    """The overlay's documents with only the SpinApps named (Services and the rest kept)."""
    return [d for d in docs if d.get("kind") != "SpinApp" or d["metadata"]["name"] in names]


def spinapp(docs, name):
    return next(d for d in docs if d.get("kind") == "SpinApp" and d["metadata"]["name"] == name)


class BrokenManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tools = shim_check.tools()
        if tools is None:
            raise unittest.SkipTest("the shim check's tools are missing")
        cls.rt = shim_check.Runtime(tools)
        cls.rt.start()
        cls.single = check.render("single")

    @classmethod
    def tearDownClass(cls):
        cls.rt.close()

    def problems(self, docs):
        return shim_check.check_overlay(self.rt, "single (broken)", docs)

    def test_the_released_manifests_pass(self):
        self.assertEqual(self.problems(only(self.single, "model-service-v1", "app-v1")), [])

    def test_a_probe_path_the_component_does_not_serve(self):
        docs = copy.deepcopy(only(self.single, "model-service-v1"))
        # The model-service alone has no /health (the app owns it under `spin up`).
        spinapp(docs, "model-service-v1")["spec"]["checks"]["readiness"]["httpGet"]["path"] = "/health"
        found = self.problems(docs)
        self.assertTrue(any("readiness probe GET /health answered 404" in p for p in found), found)

    def test_a_retained_component_that_does_not_exist(self):
        docs = copy.deepcopy(only(self.single, "model-service-v1"))
        spinapp(docs, "model-service-v1")["spec"]["components"] = ["model_service"]
        found = self.problems(docs)
        self.assertTrue(any("retains ['model_service'], which spin.toml does not define" in p for p in found), found)

    def test_a_model_service_url_naming_a_service_not_rendered(self):
        docs = copy.deepcopy(only(self.single, "model-service-v1", "app-v1"))
        for var in spinapp(docs, "app-v1")["spec"]["variables"]:
            if var["name"] == "model_service_url":
                var["value"] = "http://model-service-v9.phishing.svc.cluster.local"
        found = self.problems(docs)
        self.assertTrue(any("names a Service the overlay does not render" in p for p in found), found)


if __name__ == "__main__":
    unittest.main()
