"""The checks in check.py catch what they claim to: each test breaks one thing in a rendered
overlay and expects exactly that to be reported (and the unbroken render to pass).

    python3 -m unittest discover -s kubernetes -p 'test_*.py'
"""

import copy
import os
import unittest
from pathlib import Path

import check

CRDS = Path(os.environ.get("K8S_CRDS_DIR", check.ROOT.parent / "shared" / "k8s-crds"))
METRICS = Path(os.environ.get("APP_METRICS_FILE", check.ROOT / "target/test-output/app-metrics.txt"))


def need(path: Path, what: str):
    if path.exists():
        return
    message = f"{path} does not exist ({what})"
    if check.on_ci():
        raise AssertionError(f"{message}; required under CI")
    raise unittest.SkipTest(message)


class BrokenManifestsFail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need(CRDS, "set K8S_CRDS_DIR")
        need(METRICS, "run the host tests first: cargo test --release -p wasm-host --test app")
        cls.crds = check.load_crds(CRDS)
        cls.docs = check.render("canary")

    def problems(self, docs):
        return check.check_all({"canary": docs}, self.crds, METRICS)

    def broken(self, kind, name):
        docs = copy.deepcopy(self.docs)
        doc = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
        return docs, doc

    def assert_reported(self, docs, *needles):
        problems = self.problems(docs)
        for needle in needles:
            self.assertTrue(any(needle in p for p in problems), f"`{needle}` not in {problems}")

    def test_unbroken_render_passes(self):
        self.assertEqual(self.problems(self.docs), [])

    def test_typo_in_a_spinapp_field(self):
        docs, app = self.broken("SpinApp", "app-v1")
        app["spec"]["replica"] = app["spec"].pop("replicas")
        self.assert_reported(docs, "SpinApp/app-v1: spec: Additional properties are not allowed ('replica' was unexpected)")

    def test_typo_in_a_nested_istio_field(self):
        docs, vs = self.broken("VirtualService", "app")
        vs["spec"]["http"][0]["route"][0]["wieght"] = 90
        self.assert_reported(docs, "'wieght' was unexpected")

    def test_wrong_subset_label(self):
        docs, dr = self.broken("DestinationRule", "app")
        dr["spec"]["subsets"][1]["labels"]["version"] = "v3"
        self.assert_reported(docs, "subset `v2` ({'version': 'v3'}) matches no pods")

    def test_weights_that_do_not_sum_to_100(self):
        docs, vs = self.broken("VirtualService", "app")
        vs["spec"]["http"][-1]["route"][1]["weight"] = 20
        self.assert_reported(docs, "weights sum to 110, not 100")

    def test_promql_naming_a_metric_the_app_does_not_expose(self):
        docs, rule = self.broken("PrometheusRule", "phishing-alerts")
        r = rule["spec"]["groups"][0]["rules"][1]
        r["expr"] = r["expr"].replace("phishing_app_model_service_errors_total", "phishing_app_model_service_error_total")
        self.assert_reported(docs, "uses `phishing_app_model_service_error_total`, which the app does not expose")

    def test_promql_syntax_error(self):
        docs, rule = self.broken("PrometheusRule", "phishing-alerts")
        rule["spec"]["groups"][0]["rules"][2]["expr"] = "histogram_quantile(0.95, sum by (le) (rate(x[5m]))"
        self.assert_reported(docs, "promtool check rules")

    def test_model_service_url_naming_no_service(self):
        docs, app = self.broken("SpinApp", "app-v2")
        for v in app["spec"]["variables"]:
            if v["name"] == "model_service_url":
                v["value"] = "http://model-svc.phishing.svc.cluster.local"
        self.assert_reported(docs, "SpinApp/app-v2: variable `model_service_url`")

    def test_monitoring_every_serving_pod(self):
        docs, sm = self.broken("ServiceMonitor", "app-metrics")
        sm["spec"]["selector"]["matchLabels"] = {"app": "app"}
        sm["spec"]["endpoints"][0]["port"] = "http"
        self.assert_reported(docs, "the app's totals must come from exactly one pod")

    def test_unknown_executor(self):
        docs, app = self.broken("SpinApp", "model-service-v2")
        app["spec"]["executor"] = "containerd-shim"
        self.assert_reported(docs, "executor `containerd-shim` is not a SpinAppExecutor")


    def test_spinapps_before_their_executor(self):
        # The render order is the apply order: the operator's webhook refuses these SpinApps.
        docs = copy.deepcopy(self.docs)
        executor = next(d for d in docs if d["kind"] == "SpinAppExecutor")
        docs.remove(executor)
        docs.append(executor)
        self.assert_reported(docs, "SpinApp/app-v1 is rendered before its SpinAppExecutor `containerd-shim-spin`")

    def test_a_service_named_like_a_spinapp(self):
        docs, svc = self.broken("Service", "app-metrics-scrape")
        svc["metadata"]["name"] = "app-metrics"
        self.assert_reported(docs, "Service/app-metrics has the name of the Service spin-operator creates for SpinApp/app-metrics")

    def test_envoy_metrics_not_scraped(self):
        docs = [d for d in copy.deepcopy(self.docs) if d["kind"] != "PodMonitor"]
        self.assert_reported(docs, "no PodMonitor (release: prometheus, all namespaces) scrapes the Envoys' port http-envoy-prom")

    def test_istiod_not_scraped(self):
        docs, sm = self.broken("ServiceMonitor", "istiod")
        sm["spec"]["endpoints"][0]["port"] = "http"
        self.assert_reported(docs, "no ServiceMonitor scrapes istiod")

    def test_a_canary_split_per_request(self):
        # Without the cookie rules a person's page and its /api/* calls can land on two versions.
        docs, vs = self.broken("VirtualService", "app")
        vs["spec"]["http"] = vs["spec"]["http"][-1:]
        self.assert_reported(docs, "no rule before `app` sends the cookie `phishing-version=v2` back to subset v2")


class PromqlNames(unittest.TestCase):
    def test_names_exclude_functions_labels_and_keywords(self):
        expr = ('histogram_quantile(0.95, sum by (version, le) (rate(a_bucket{job="x"}[5m]))) > 0.25 '
                'and on (version) sum without (pod) (b_total) / scalar(up)')
        self.assertEqual(check.metric_names(expr), {"a_bucket", "b_total", "up"})


if __name__ == "__main__":
    unittest.main()
