// squall UI: the only script. Pages work without it; it adds live logs and a cancel confirmation.
"use strict";

const LOG_POLL_MS = 2000;
const TERMINAL_STATES = new Set(["Success", "Failed", "Error", "Cancelled"]);

// Follow each live log: refetch the whole step log, keep the view pinned to the bottom if it was,
// and reload the page once the job is terminal so the state, steps and usage are final.
function followLogs() {
  const logs = document.querySelectorAll("pre.log[data-live-url]");
  if (logs.length === 0) return;
  let finished = false;
  async function poll() {
    for (const pre of logs) {
      try {
        const answer = await fetch(pre.dataset.liveUrl, {credentials: "same-origin", cache: "no-store"});
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        if (answer.ok) pre.textContent = await answer.text();
        if (atBottom) pre.scrollTop = pre.scrollHeight;
        if (TERMINAL_STATES.has(answer.headers.get("X-Squall-Job-State"))) finished = true;
      } catch (err) {
        // a network blip: try again on the next tick
      }
    }
    if (finished) window.location.reload();
    else window.setTimeout(poll, LOG_POLL_MS);
  }
  window.setTimeout(poll, LOG_POLL_MS);
}

function confirmDangerousForms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  followLogs();
  confirmDangerousForms();
});
