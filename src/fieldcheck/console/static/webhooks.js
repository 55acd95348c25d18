// The webhook pages' script: copying a signing secret, and keeping it to the one page that shows it.
// Without it the secret is still on the page to select and copy by hand.
"use strict";

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function setupSecret() {
  const box = document.querySelector(".secret-box");
  if (!box) return;
  // This page answers the POST that made the secret: make the history entry the endpoint's plain
  // page, so that reloading (or coming back) shows it without the secret and posts nothing again.
  if (box.dataset.page) history.replaceState(null, "", box.dataset.page);
  // Leaving the page forgets the secret, even if the browser keeps the page to come back to.
  window.addEventListener("pagehide", () => box.remove());

  const button = document.getElementById("copy-secret");
  const secret = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(secret.textContent.trim());
      status.textContent = "Copied to the clipboard.";
      button.textContent = "Copied";
    } catch (error) {
      selectText(secret);
      status.textContent = "The secret is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
    }
  });
}

function setupRefresh() {
  // A delivery whose attempt is due now: show its outcome without a reload by hand (and without
  // the notice that asked for it).
  const holder = document.querySelector("[data-refresh]");
  if (!holder) return;
  setTimeout(() => location.replace(location.pathname), Number(holder.dataset.refresh) * 1000);
}

document.addEventListener("DOMContentLoaded", () => { setupSecret(); setupRefresh(); });
