import type { Job } from '../../../lib';
import { escapeHtml } from './html-escape';

/** One row of the page's job list, as `GET /jobs/latest` returns it and the page renders it. */
export interface JobSummary {
  id: string;
  queue: string;
  name: string;
  state: string;
  attempts: number;
  maxAttempts: number | null;
  error: string | null;
}

export function summarize(job: Job): JobSummary {
  return {
    id: job.id,
    queue: job.queue,
    name: job.name,
    state: job.state,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    error: job.lastError?.message ?? null,
  };
}

const CANCELLABLE = new Set(['pending', 'active']);

function row(job: JobSummary): string {
  const cells = [job.id, `${job.queue} / ${job.name}`, job.state, `${job.attempts} of ${job.maxAttempts ?? '?'}`, job.error ?? ''];
  const cancel = CANCELLABLE.has(job.state) ? `<button data-cancel="${escapeHtml(job.id)}">cancel</button>` : '';
  return `<tr class="${escapeHtml(job.state)}">${cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}<td>${cancel}</td></tr>`;
}

/**
 * The sample app's front page: what it shows, buttons that enqueue the demo jobs, and the latest
 * jobs, refreshed every second by a few lines of script (which builds rows with textContent, so
 * nothing from the database is ever parsed as HTML). No build step, no framework.
 */
export function renderHomePage(jobs: JobSummary[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nestjs-pg-queue sample app</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
  form, .actions { display: flex; gap: .5rem; flex-wrap: wrap; margin: .5rem 0; }
  table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd; padding: .3rem; text-align: left; }
  tr.completed td:nth-child(3) { color: #080; } tr.failed td:nth-child(3) { color: #b00; } tr.active td:nth-child(3) { color: #05a; }
  #message { min-height: 1.4em; color: #555; }
</style>
</head>
<body>
<h1>nestjs-pg-queue sample app</h1>
<p>Background jobs stored in PostgreSQL. Each button below enqueues a job with <code>QueueService.add()</code>;
a worker in this process claims it (<code>FOR UPDATE SKIP LOCKED</code>, woken by <code>LISTEN/NOTIFY</code>) and runs
its <code>@Handle()</code> method. Watch the list: retries, errors and cancellation are rows changing state.</p>
<form id="signup">
  <input name="email" type="email" placeholder="ada@example.com" required>
  <button>Sign up</button>
  <span>saves a user and enqueues its welcome email in the same transaction</span>
</form>
<div class="actions">
  <button id="fails-twice">Enqueue a job that fails twice, then succeeds</button>
  <button id="slow">Enqueue a slow job (30 s) you can cancel</button>
</div>
<p id="message" role="status"></p>
<h2>Latest jobs</h2>
<table>
<thead><tr><th>id</th><th>queue / name</th><th>state</th><th>attempts</th><th>last error</th><th></th></tr></thead>
<tbody id="jobs">${jobs.map(row).join('')}</tbody>
</table>
<p>The queue dashboard: <a href="/queues">/queues</a> (user <code>admin</code> or <code>viewer</code>, password <code>demo</code> unless <code>DASHBOARD_PASSWORD</code> says otherwise).</p>
<p>JSON API: <code>POST /signup</code>, <code>POST /jobs</code>, <code>GET /jobs/latest</code>, <code>GET /jobs/counts</code>,
<code>GET /jobs/:id</code>, <code>POST /jobs/:id/cancel</code>, <code>POST /jobs/:id/retry</code>.</p>
<script>
const message = document.getElementById('message');
async function post(path, body) {
  const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  const answer = await response.json().catch(() => ({}));
  message.textContent = response.ok ? 'Enqueued job ' + (answer.jobId ?? answer.id) : 'Error ' + response.status + ': ' + (answer.message ?? '');
  refresh();
}
document.getElementById('signup').addEventListener('submit', (event) => {
  event.preventDefault();
  post('/signup', { email: new FormData(event.target).get('email') });
});
document.getElementById('fails-twice').addEventListener('click', () => post('/jobs', { queue: 'demo', name: 'fails-twice' }));
document.getElementById('slow').addEventListener('click', () => post('/jobs', { queue: 'demo', name: 'slow', data: { seconds: 30 } }));
document.getElementById('jobs').addEventListener('click', (event) => {
  const id = event.target.dataset && event.target.dataset.cancel;
  if (id) post('/jobs/' + encodeURIComponent(id) + '/cancel');
});
async function refresh() {
  const response = await fetch('/jobs/latest').catch(() => undefined);
  if (!response || !response.ok) return;
  const rows = (await response.json()).map((job) => {
    const tr = document.createElement('tr');
    tr.className = job.state;
    for (const text of [job.id, job.queue + ' / ' + job.name, job.state, job.attempts + ' of ' + (job.maxAttempts ?? '?'), job.error ?? '']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement('td');
    if (job.state === 'pending' || job.state === 'active') {
      const button = document.createElement('button');
      button.textContent = 'cancel';
      button.dataset.cancel = job.id;
      td.append(button);
    }
    tr.append(td);
    return tr;
  });
  document.getElementById('jobs').replaceChildren(...rows);
}
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
}
