/* Stands in for uPlot when web/node_modules was not installed at build time
 * (scripts/bootstrap.sh runs `npm ci` in web/). The page shows this message
 * in place of a graph. */
window.uPlotMissing = "uPlot was not installed when this binary was built (run scripts/bootstrap.sh, or npm ci in web/, and rebuild): the Graph tab is unavailable.";
