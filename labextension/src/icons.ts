/**
 * The OpenFoal icon, shown on the sidebar tab, the launcher card and the palette.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2h-7l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/>
</svg>`;

/** The chat bubble icon of OpenFoal. */
export const openfoalIcon = new LabIcon({ name: 'openfoal:chat', svgstr: svg });

const approvalsSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 2 4 5v6c0 5 3.4 9.7 8 11 4.6-1.3 8-6 8-11V5l-8-3zm-1.2 14.2-3.5-3.5 1.4-1.4 2.1 2.1 4.9-4.9 1.4 1.4-6.3 6.3z"/>
</svg>`;

/** A shield with a check: the Approvals panel. */
export const approvalsIcon = new LabIcon({
  name: 'openfoal:approvals',
  svgstr: approvalsSvg
});

const auditSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M6 2h9l5 5v13a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm8 1.5V8h4.5L14 3.5zM7 11v2h10v-2H7zm0 4v2h7v-2H7z"/>
</svg>`;

/** A page with lines: the Audit panel. */
export const auditIcon = new LabIcon({
  name: 'openfoal:audit',
  svgstr: auditSvg
});

const replaySvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 4a8 8 0 1 1-7.4 5H2l3.5-4L9 9H6.7A6 6 0 1 0 12 6V4zm-1 4h2v4.4l3 1.8-1 1.7-4-2.4V8z"/>
</svg>`;

/** A clock turning back: the Replay of a run. */
export const replayIcon = new LabIcon({
  name: 'openfoal:replay',
  svgstr: replaySvg
});

const metricsSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M3 3h2v16h16v2H3V3zm4 10h3v5H7v-5zm5-6h3v11h-3V7zm5 3h3v8h-3v-8z"/>
</svg>`;

/** Bars: the Metrics panel. */
export const metricsIcon = new LabIcon({
  name: 'openfoal:metrics',
  svgstr: metricsSvg
});

const syncSvg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 4V1L8 5l4 4V6a6 6 0 0 1 5.2 9l1.5 1.5A8 8 0 0 0 12 4zm0 14a6 6 0 0 1-5.2-9L5.3 7.5A8 8 0 0 0 12 20v3l4-4-4-4v3z"/>
</svg>`;

/** Two circling arrows: the Sync panel. */
export const syncIcon = new LabIcon({ name: 'openfoal:sync', svgstr: syncSvg });
