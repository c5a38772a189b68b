// Phishing URL Check: the page's behaviour. Plain script, no build step, no inline code (CSP).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("check-form"), input = $("url"), button = $("check");
  const result = $("result"), verdict = $("verdict"), meter = $("meter"), fill = $("meter-fill");
  const score = $("score"), checked = $("checked-url"), errorBox = $("error"), loading = $("loading");
  const agree = $("agree"), disagree = $("disagree"), thanks = $("thanks");
  const site = $("site"), siteName = $("site-name"), siteVia = $("site-via"), reasons = $("reasons"), legend = $("marks-legend");
  let last = null; // the prediction feedback refers to

  // Words for failures a person can act on; the server's message is added for bad input.
  function describe(status, body) {
    const detail = body && typeof body.error === "string" ? body.error : "";
    if (status === 0) return "Could not reach the service. Check your connection and try again.";
    if (status === 422 && /web address|single word|only http/.test(detail)) {
      return "That doesn't look like a web address. Paste a link such as https://example.com/login. (" + detail + ")";
    }
    if (status === 400 || status === 422) return "That does not look like a URL we can check: " + detail;
    if (status === 413) return "That input is too long to check.";
    if (status === 429) return "Too many checks in a short time. Please wait a moment and try again.";
    if (status === 502) return "The classifier is unavailable right now. Please try again in a minute.";
    if (status === 503) return "This could not be saved right now. Please try again in a minute.";
    if (status === 504) return "The classifier took too long to answer. Please try again.";
    return "Something went wrong (" + status + "). Please try again.";
  }

  async function post(path, payload) {
    let resp;
    try {
      resp = await fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(payload),
      });
    } catch (_) {
      return { status: 0, body: null };
    }
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    return { status: resp.status, body };
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  // What each verdict band says; the bands come from the model card (chosen on validation data).
  const BANDS = {
    likely_phishing: ["phishing", "Likely phishing — do not enter passwords or payment details here."],
    suspicious: ["suspicious", "Suspicious — check the real site below before you sign in or pay."],
    likely_safe: ["legitimate", "Likely safe — no signs of phishing found."],
  };

  // The address with the parts that pushed the score up marked (text and colour both).
  function showAddress(p) {
    checked.textContent = "";
    let marked = 0;
    const parts = Array.isArray(p.attribution) ? p.attribution : [];
    if (!parts.length) checked.textContent = p.url;
    for (const part of parts) {
      if (typeof part.text !== "string") continue;
      // The scheme is not something a person can judge a link by; every other part can be.
      if (part.contribution > 0.5 && part.part !== "scheme") {
        const m = document.createElement("mark");
        m.className = "up";
        m.textContent = part.text;
        const note = document.createElement("span");
        note.className = "visually-hidden";
        note.textContent = " (looks suspicious)";
        m.appendChild(note);
        checked.appendChild(m);
        marked += 1;
      } else {
        checked.appendChild(document.createTextNode(part.text));
      }
    }
    legend.hidden = marked === 0;
  }

  function showReasons(p) {
    reasons.textContent = "";
    const list = Array.isArray(p.reasons) ? p.reasons.slice(0, 4) : [];
    for (const r of list) {
      const li = document.createElement("li");
      const against = r.weight > 0;
      li.className = against ? "against" : "for";
      const sign = document.createElement("span");
      sign.className = "sign";
      sign.setAttribute("aria-hidden", "true");
      sign.textContent = against ? "!" : "✓";
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = against ? "Warning: " : "In its favour: ";
      li.append(sign, hidden, document.createTextNode(r.message));
      reasons.appendChild(li);
    }
    reasons.hidden = list.length === 0;
  }

  function showVerdict(p) {
    const pct = Math.round(p.score * 1000) / 10;
    const band = BANDS[p.verdict] || (p.label === "phishing" ? BANDS.likely_phishing : BANDS.likely_safe);
    result.classList.remove("phishing", "legitimate", "suspicious");
    result.classList.add(band[0]);
    verdict.textContent = band[1];
    fill.style.width = pct + "%";
    meter.setAttribute("aria-valuenow", String(pct));
    meter.setAttribute("aria-valuetext", pct + "% probability of phishing");
    const per100 = pct < 1 ? "fewer than 1" : pct > 99 ? "more than 99" : "about " + Math.round(pct);
    score.textContent = "Probability of phishing: " + pct.toFixed(1) + "% — of links scored like this, " + per100 + " in 100 are phishing.";
    // A known site's link that passes you on (a mail filter's wrapper, a redirect) is scored as
    // the page it leads to: that page is the real site.
    const real = p.leads_to || p.registrable_domain;
    site.hidden = !real;
    siteName.textContent = real || "";
    siteVia.textContent = p.leads_to && p.registrable_domain ? " (the link passes through " + p.registrable_domain + ")" : "";
    showReasons(p);
    showAddress(p);
    agree.disabled = false;
    disagree.disabled = false;
    thanks.hidden = true;
    result.hidden = false;
  }

  async function check() {
    clearError();
    const url = input.value.trim();
    if (!url) {
      result.hidden = true;
      showError("Enter a URL to check, for example https://example.com/login.");
      input.focus();
      return;
    }
    button.disabled = true;
    loading.hidden = false;
    const { status, body } = await post("/api/predict", { url });
    loading.hidden = true;
    button.disabled = false;
    if (status === 200 && body && typeof body.score === "number") {
      last = body;
      showVerdict(body);
    } else {
      result.hidden = true;
      showError(describe(status, body));
    }
  }

  async function sendFeedback(agreed) {
    if (!last) return;
    agree.disabled = true;
    disagree.disabled = true;
    const shown = {
      score: last.score,
      reasons: Array.isArray(last.reasons) ? last.reasons.slice(0, 4).map((r) => r.code) : [],
    };
    const { status, body } = await post("/api/feedback", { url: last.url, label: last.label, agree: agreed, ...shown });
    if (status === 201) {
      thanks.textContent = agreed
        ? "Thank you! Your feedback has been recorded."
        : "Thank you! We will use your correction to improve the model.";
      thanks.hidden = false;
    } else {
      agree.disabled = false;
      disagree.disabled = false;
      showError(describe(status, body));
    }
  }

  async function loadVersions() {
    try {
      const resp = await fetch("/api/version", { headers: { accept: "application/json" } });
      const v = await resp.json();
      const model = v.model && v.model.version ? v.model.version : "unavailable";
      $("versions").textContent = "app " + v.app.version + " · lib-version " + v.lib_version.version + " · model " + model;
    } catch (_) {
      // The footer keeps its placeholder.
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); check(); });
  agree.addEventListener("click", () => sendFeedback(true));
  disagree.addEventListener("click", () => sendFeedback(false));
  loadVersions();
})();
