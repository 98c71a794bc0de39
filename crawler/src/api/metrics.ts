/** Request counters in Prometheus text format, plus gauges the caller reads at scrape time. */
export class ApiMetrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, { sum: number; count: number }>();

  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `method="${method}",route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const d = this.durations.get(`route="${route}"`) ?? { sum: 0, count: 0 };
    d.sum += seconds;
    d.count += 1;
    this.durations.set(`route="${route}"`, d);
  }

  render(gauges: Array<{ name: string; help: string; value: number }>): string {
    const lines = ['# HELP crawler_api_requests_total HTTP requests by route and status.', '# TYPE crawler_api_requests_total counter'];
    for (const [labels, n] of this.requests) lines.push(`crawler_api_requests_total{${labels}} ${n}`);
    lines.push('# HELP crawler_api_request_seconds Time spent answering requests.', '# TYPE crawler_api_request_seconds summary');
    for (const [labels, d] of this.durations) {
      lines.push(`crawler_api_request_seconds_sum{${labels}} ${d.sum.toFixed(6)}`, `crawler_api_request_seconds_count{${labels}} ${d.count}`);
    }
    for (const gauge of gauges) lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`, `${gauge.name} ${gauge.value}`);
    return lines.join('\n') + '\n';
  }
}
