/**
 * The Metrics panel: a bucketed `metrics.summary` over a chosen window, as figures and
 * Chart.js charts, refreshed live on run and gate events and on a timer.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  ChartConfiguration,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip
} from 'chart.js';

import { IEventFrame } from '../protocol';
import { IMetricsSummaryResult } from '../protocol.generated';
import { IOpenFoalClient } from '../tokens';
import { h } from '../widgets/dom';
import { iconButton } from '../widgets/header';
import { ServerLine, ensureConnected, errorLine } from './inspect';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip
);

/** A window the panel offers: its length and the bucket it is drawn with (seconds). */
export interface IMetricsWindow {
  key: string;
  seconds: number;
  bucket: number;
}

/** The windows of the picker. */
export const METRICS_WINDOWS: IMetricsWindow[] = [
  { key: '15m', seconds: 15 * 60, bucket: 60 },
  { key: '1h', seconds: 3600, bucket: 5 * 60 },
  { key: '24h', seconds: 86_400, bucket: 3600 },
  { key: '7d', seconds: 7 * 86_400, bucket: 6 * 3600 },
  { key: '30d', seconds: 30 * 86_400, bucket: 86_400 }
];

/** The figures shown as numbers (`data-figure`), in order. */
export const METRICS_FIGURES = [
  'runsTotal',
  'runsFailed',
  'runsActive',
  'p95LatencyMs',
  'toolCallsTotal',
  'toolFailures',
  'gatePending',
  'gatesTotal'
] as const;

/** The events after which the figures change. */
const LIVE_EVENTS = new Set([
  'agent.accepted',
  'agent.completed',
  'agent.failed',
  'agent.tool_result',
  'policy-gate.requested',
  'policy-gate.resolved'
]);

/** The summary of one window, with charts; the last good answer stays on errors. */
export class MetricsPanel extends Widget {
  constructor(options: MetricsPanel.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this._refreshMs = options.refreshMs ?? 30_000;
    const trans = this._trans;
    this.addClass('jp-OpenFoal-metrics');
    this.addClass('jp-OpenFoal-console');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('OpenFoal metrics'));
    this._windowSelect = h('select', {
      class: 'jp-OpenFoal-metricsWindow',
      'aria-label': trans.__('Window')
    });
    const labels: Record<string, string> = {
      '15m': trans.__('Last 15 minutes'),
      '1h': trans.__('Last hour'),
      '24h': trans.__('Last 24 hours'),
      '7d': trans.__('Last 7 days'),
      '30d': trans.__('Last 30 days')
    };
    for (const w of METRICS_WINDOWS) {
      this._windowSelect.append(h('option', { value: w.key }, labels[w.key]));
    }
    this._windowSelect.value = this._window.key;
    this._windowSelect.addEventListener('change', () => {
      this._window =
        METRICS_WINDOWS.find(w => w.key === this._windowSelect.value) ??
        this._window;
      void this.refresh();
    });
    const refresh = iconButton(refreshIcon, trans.__('Refresh'), 'refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this._status = h('div', {
      class: 'jp-OpenFoal-consoleStatus',
      role: 'status',
      'aria-live': 'polite'
    });
    this._server = new ServerLine(this._client, trans);
    const names: Record<string, string> = {
      runsTotal: trans.__('Runs'),
      runsFailed: trans.__('Failed runs'),
      runsActive: trans.__('Active runs'),
      p95LatencyMs: trans.__('p95 latency (ms)'),
      toolCallsTotal: trans.__('Tool calls'),
      toolFailures: trans.__('Tool failures'),
      gatePending: trans.__('Pending gates'),
      gatesTotal: trans.__('Gates')
    };
    this._figures = h('dl', { class: 'jp-OpenFoal-metricsFigures' });
    for (const key of METRICS_FIGURES) {
      const value = h('dd', { 'data-figure': key }, '—');
      this._values.set(key, value);
      this._figures.append(
        h(
          'div',
          { class: 'jp-OpenFoal-metricsFigure' },
          h('dt', {}, names[key]),
          value
        )
      );
    }
    this._charts = h('div', { class: 'jp-OpenFoal-metricsCharts' });
    for (const key of ['runs', 'tools', 'latency', 'gates']) {
      const canvas = h('canvas', {
        role: 'img',
        'data-chart': key,
        'aria-label': {
          runs: trans.__('Runs and failures over time'),
          tools: trans.__('Tool calls by tool'),
          latency: trans.__('p95 run latency over time'),
          gates: trans.__('Gates and pending gates over time')
        }[key]
      });
      this._canvases.set(key, canvas);
      this._charts.append(
        h('div', { class: 'jp-OpenFoal-metricsChart' }, canvas)
      );
    }
    this.node.append(
      h(
        'div',
        { class: 'jp-OpenFoal-consoleFilters' },
        h('label', {}, trans.__('Window'), this._windowSelect),
        refresh
      ),
      this._server.node,
      this._status,
      this._figures,
      this._charts
    );
    this._client.eventReceived.connect(this._onEvent, this);
    this._client.resumed.connect(this._onResumed, this);
    this._timer = window.setInterval(
      () => void this.refresh(),
      this._refreshMs
    );
    // Chart.js paints with fixed colours: draw again when JupyterLab's theme changes.
    this._themeWatch = new MutationObserver(() => {
      window.requestAnimationFrame(() => {
        if (this._summary && !this.isDisposed) {
          this._render(this._summary);
        }
      });
    });
    this._themeWatch.observe(document.body, {
      attributes: true,
      attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light']
    });
  }

  /** The last answer shown, or `null`. */
  get summary(): IMetricsSummaryResult | null {
    return this._summary;
  }

  /** Load the window ending now, with its buckets. */
  async refresh(): Promise<void> {
    const ticket = ++this._ticket;
    const w = this._window;
    const to = new Date();
    // Whole buckets: the window starts on a bucket boundary.
    const fromMs =
      Math.floor((to.getTime() - w.seconds * 1000) / (w.bucket * 1000)) *
      w.bucket *
      1000;
    this._status.dataset.state = 'loading';
    try {
      await ensureConnected(this._client, this._trans);
      const summary = await this._client.request<IMetricsSummaryResult>(
        'metrics.summary',
        {
          from: new Date(fromMs).toISOString(),
          to: to.toISOString(),
          bucket: w.bucket
        }
      );
      if (ticket !== this._ticket) {
        return;
      }
      this._summary = summary;
      this.node.dataset.from = summary.from ?? '';
      this.node.dataset.to = summary.to ?? '';
      this._render(summary);
      this._status.textContent = this._trans.__(
        'Updated %1',
        new Date().toLocaleTimeString()
      );
      this._status.dataset.state = 'ready';
    } catch (reason) {
      if (ticket === this._ticket) {
        this._status.textContent = errorLine(reason, this._trans);
        this._status.dataset.state = 'error';
      }
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    window.clearInterval(this._timer);
    this._themeWatch.disconnect();
    window.clearTimeout(this._soon);
    this._client.eventReceived.disconnect(this._onEvent, this);
    this._client.resumed.disconnect(this._onResumed, this);
    this._server.dispose();
    this._chartObjects.forEach(chart => chart.destroy());
    super.dispose();
  }

  private _onEvent(_: IOpenFoalClient, frame: IEventFrame): void {
    if (LIVE_EVENTS.has(frame.event)) {
      // Several events of one turn make one reload.
      window.clearTimeout(this._soon);
      this._soon = window.setTimeout(() => void this.refresh(), 500);
    }
  }

  private _onResumed(): void {
    void this.refresh();
  }

  private _render(summary: IMetricsSummaryResult): void {
    const m = summary.metrics as Record<string, unknown>;
    for (const [key, node] of this._values) {
      const value = m[key];
      node.textContent =
        value === null || value === undefined ? '—' : String(value);
    }
    const series = summary.series ?? [];
    const bucket = summary.bucket ?? this._window.bucket;
    const labels = series.map(b => bucketLabel(b.start, bucket));
    const css = getComputedStyle(this.node);
    const color = (name: string, fallback: string) =>
      css.getPropertyValue(name).trim() || fallback;
    const text = color('--jp-ui-font-color1', '#333');
    const grid = color('--jp-border-color2', '#ddd');
    const brand = color('--jp-brand-color1', '#1976d2');
    const error = color('--jp-error-color1', '#d32f2f');
    const warn = color('--jp-warn-color1', '#f57c00');
    const t = this._trans;
    const byTool = summary.byTool ?? [];
    this._draw(
      'runs',
      {
        type: 'bar',
        data: {
          labels,
          datasets: [
            {
              label: t.__('Runs'),
              data: series.map(b => b.runsTotal),
              backgroundColor: brand
            },
            {
              label: t.__('Failed'),
              data: series.map(b => b.runsFailed),
              backgroundColor: error
            }
          ]
        }
      },
      text,
      grid
    );
    this._draw(
      'tools',
      {
        type: 'bar',
        data: {
          labels: byTool.map(x => x.toolName),
          datasets: [
            {
              label: t.__('Calls'),
              data: byTool.map(x => x.calls),
              backgroundColor: brand
            },
            {
              label: t.__('Failures'),
              data: byTool.map(x => x.failures),
              backgroundColor: error
            }
          ]
        }
      },
      text,
      grid
    );
    this._draw(
      'latency',
      {
        type: 'line',
        data: {
          labels,
          datasets: [
            {
              label: t.__('p95 latency (ms)'),
              data: series.map(b => b.p95LatencyMs ?? null),
              borderColor: brand,
              backgroundColor: brand,
              spanGaps: true
            }
          ]
        }
      },
      text,
      grid
    );
    this._draw(
      'gates',
      {
        type: 'bar',
        data: {
          labels,
          datasets: [
            {
              label: t.__('Gates'),
              data: series.map(b => b.gatesTotal),
              backgroundColor: brand
            },
            {
              label: t.__('Pending'),
              data: series.map(b => b.gatePending),
              backgroundColor: warn
            }
          ]
        }
      },
      text,
      grid
    );
  }

  private _draw(
    key: string,
    config: ChartConfiguration,
    text: string,
    grid: string
  ): void {
    const axis = { ticks: { color: text }, grid: { color: grid } };
    const options = {
      animation: false as const,
      responsive: true,
      maintainAspectRatio: false,
      scales: { x: axis, y: { ...axis, beginAtZero: true } },
      plugins: { legend: { labels: { color: text } } }
    };
    const existing = this._chartObjects.get(key);
    if (existing) {
      existing.data = config.data;
      existing.options = options;
      existing.update();
      return;
    }
    const canvas = this._canvases.get(key)!;
    this._chartObjects.set(
      key,
      new Chart(canvas, { ...config, options } as ChartConfiguration)
    );
  }

  private readonly _client: IOpenFoalClient;
  private readonly _trans: TranslationBundle;
  private readonly _refreshMs: number;
  private readonly _windowSelect: HTMLSelectElement;
  private readonly _status: HTMLElement;
  private readonly _server: ServerLine;
  private readonly _figures: HTMLElement;
  private readonly _charts: HTMLElement;
  private readonly _values = new Map<string, HTMLElement>();
  private readonly _canvases = new Map<string, HTMLCanvasElement>();
  private readonly _chartObjects = new Map<string, Chart>();
  private _window: IMetricsWindow = METRICS_WINDOWS[1];
  private _summary: IMetricsSummaryResult | null = null;
  private _ticket = 0;
  private _timer = 0;
  private readonly _themeWatch: MutationObserver;
  private _soon = 0;
}

/** A bucket's start as a short local label: a time for short buckets, a date for long. */
function bucketLabel(iso: string, bucket: number): string {
  const d = new Date(iso);
  return bucket >= 86_400
    ? d.toLocaleDateString()
    : bucket >= 3600 && bucket % 86_400 !== 0
      ? `${d.toLocaleDateString()} ${d.getHours()}:00`
      : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Options of {@link MetricsPanel}. */
export namespace MetricsPanel {
  /** What the panel needs. */
  export interface IOptions {
    client: IOpenFoalClient;
    trans: TranslationBundle;
    /** How often the figures reload without events (ms, default 30 s). */
    refreshMs?: number;
  }
}
