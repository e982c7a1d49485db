// Minimal script: live progress on a run's page (polls its JSON), and a busy note on submit.
(function () {
  const job = document.getElementById("job");
  if (job) {
    const id = job.dataset.id;
    const tick = async () => {
      const r = await fetch("/jobs/" + id + ".json", {credentials: "same-origin"});
      if (!r.ok) return;
      const j = await r.json();
      document.getElementById("job-status").textContent = j.status;
      document.getElementById("job-note").textContent = j.note || "";
      const bar = document.getElementById("job-progress");
      if (j.total) { bar.max = j.total; bar.value = j.done; }
      if (j.status === "running" || j.status === "queued") { setTimeout(tick, 400); }
      else { location.reload(); }
    };
    if (job.dataset.status === "running" || job.dataset.status === "queued") setTimeout(tick, 300);
  }
  document.querySelectorAll("form").forEach((f) => f.addEventListener("submit", () => {
    const b = f.querySelector("button"); if (b) { b.disabled = true; b.textContent = "running…"; }
  }));
})();
