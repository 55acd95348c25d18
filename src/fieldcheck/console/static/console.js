// The fieldcheck console's only script: keyboard shortcuts, photo zoom, the lease clock and
// export progress. Pages work without it (every action is a plain form).
"use strict";

function typing(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function setupReview() {
  const form = document.getElementById("decision");
  if (!form) return;
  const hint = document.getElementById("decision-hint");
  const submit = (id) => { const button = document.getElementById(id); form.requestSubmit(button); };
  form.addEventListener("submit", (event) => {
    const rejecting = event.submitter && event.submitter.value === "reject";
    if (rejecting && !form.querySelector('input[name="reasons"]:checked')) {
      event.preventDefault();
      hint.textContent = "Pick at least one reason for the rejection, then press r again.";
      form.querySelector('input[name="reasons"]').focus();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) && event.target.type !== "checkbox") return;
    const key = event.key.toLowerCase();
    if (key === "a") { event.preventDefault(); submit("approve"); }
    else if (key === "r") { event.preventDefault(); submit("reject"); }
    else if (key === "n") { event.preventDefault(); document.getElementById("next").requestSubmit(); }
    else if (key === "t") { event.preventDefault(); document.getElementById("toggle-thumbnails").click(); }
  });
  document.querySelectorAll(".photo .zoom").forEach((button) => {
    button.addEventListener("click", () => button.closest(".photo").classList.toggle("zoomed"));
  });
  const toggle = document.getElementById("toggle-thumbnails");
  const layout = document.querySelector(".review");
  toggle.addEventListener("click", () => {
    const on = layout.classList.toggle("thumbnails");
    toggle.setAttribute("aria-pressed", String(on));
    toggle.textContent = on ? "Show large photos" : "Show thumbnails";
    document.querySelectorAll(".photo img").forEach((img) => { img.src = on ? img.dataset.thumb : img.dataset.full; });
  });
  const lease = document.getElementById("lease");
  if (lease) {
    const ends = Date.parse(lease.dataset.expires);
    const tick = () => {
      const left = Math.round((ends - Date.now()) / 1000);
      if (left <= 0) {
        lease.textContent = "Your lease expired: another reviewer may take this item. Claim it again to decide.";
        lease.classList.add("ending");
        return;
      }
      const minutes = Math.floor(left / 60), seconds = String(left % 60).padStart(2, "0");
      lease.textContent = `Your lease ends in ${minutes}:${seconds}`;
      lease.classList.toggle("ending", left < 120);
      setTimeout(tick, 1000);
    };
    tick();
  }
}

function setupExports() {
  document.querySelectorAll(".export").forEach((row) => {
    if (!["queued", "running"].includes(row.dataset.status)) return;
    const bar = row.querySelector("progress"), state = row.querySelector(".state"), link = row.querySelector(".download");
    const poll = async () => {
      let body;
      try {
        const answer = await fetch(`/console/exports/${row.dataset.export}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!answer.ok) throw new Error(String(answer.status));
        body = await answer.json();
      } catch (error) {
        state.textContent = "could not read the progress; retrying";
        setTimeout(poll, 3000);
        return;
      }
      bar.value = body.progress;
      row.dataset.status = body.status;
      if (body.status === "done") {
        state.textContent = "ready";
        link.href = body.download_url;
        link.textContent = `Download ${body.filename || ""}`;
        link.hidden = false;
      } else if (body.status === "failed") {
        state.textContent = `failed: ${body.error}`;
      } else {
        state.textContent = body.stage ? `${body.status}: ${body.stage}` : body.status;
        setTimeout(poll, 1000);
      }
    };
    poll();
  });
}

document.addEventListener("DOMContentLoaded", () => { setupReview(); setupExports(); });
