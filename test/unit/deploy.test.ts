import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { parseConfigText } from '../../src/config/loader.js';
import { createMetrics } from '../../src/observability/metrics.js';

/**
 * The operating documents cannot drift from the code: the README's metrics table and the Grafana dashboard
 * name only metrics the process registers (and the README all of them), and the Kubernetes example's
 * configuration is valid and gets every ${VAR} it reads from its Secret.
 */
const registered = () =>
  createMetrics()
    .registry.getMetricsAsArray()
    .map((m) => m.name)
    .filter((n) => !n.startsWith('wooxy_cdc_process_'))
    .sort();

describe('operating documents', () => {
  it('the README lists every metric the process registers, and no other', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = readme.slice(readme.indexOf('### Metrics'), readme.indexOf('### Runbook'));
    const listed = [...section.matchAll(/^\| `(wooxy_cdc_[a-z_]+)` \|/gm)].map((m) => m[1]!).sort();
    expect(listed).toEqual(registered());
  });

  it('the Grafana dashboard queries only registered metrics', () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana/wooxy-cdc-dashboard.json', 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/wooxy_cdc_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')))));
    const known = new Set(registered());
    expect([...used].filter((n) => !known.has(n))).toEqual([]);
    expect(used.size).toBeGreaterThan(15);
  });

  it('the Kubernetes example: a valid configuration, every ${VAR} from the Secret, probes on the server port', () => {
    const configMap = parse(readFileSync('deploy/kubernetes/configmap.yaml', 'utf8')) as { data: Record<string, string> };
    const secret = parse(readFileSync('deploy/kubernetes/secret.example.yaml', 'utf8')) as { stringData: Record<string, string> };
    const yaml = configMap.data['wooxy-cdc.yaml']!;
    const referenced = [...yaml.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]).sort();
    expect(referenced).toEqual(Object.keys(secret.stringData).sort());
    const config = parseConfigText(yaml, secret.stringData, 'configmap.yaml');
    expect(config.webhook.secret).toBeDefined();

    interface Probe {
      httpGet: { path: string };
    }
    interface Deployment {
      spec: {
        replicas: number;
        template: {
          spec: {
            terminationGracePeriodSeconds: number;
            containers: Array<{ args: string[]; ports: Array<{ containerPort: number }>; livenessProbe: Probe; readinessProbe: Probe; volumeMounts: Array<{ mountPath: string }> }>;
          };
        };
      };
    }
    const [deployment] = parseAllDocuments(readFileSync('deploy/kubernetes/deployment.yaml', 'utf8')).map((d) => d.toJS() as Deployment);
    expect(deployment?.spec.replicas).toBe(2);
    const container = deployment!.spec.template.spec.containers[0]!;
    expect(container.ports[0]?.containerPort).toBe(config.http.port);
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.args).toEqual(['run', '--config', '/config/wooxy-cdc.yaml']);
    expect(container.volumeMounts[0]?.mountPath).toBe('/config');
    expect(deployment!.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.delivery.drainTimeoutMs);
  });
});

describe('packaging', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { license: string; files: string[] };

  it('ships a LICENSE that matches package.json', () => {
    expect(pkg.license).toBe('MIT');
    const license = readFileSync('LICENSE', 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} wooxy-cdc contributors\n/);
    expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND');
  });

  it('the runtime image keeps --enable-source-maps beside the heap flags', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    // An ENV replaces the variable whole: the last assignment before the entry point is the one that runs.
    const assignments = [...runtime.matchAll(/NODE_OPTIONS=("[^"]*"|\S+)/g)].map((m) => m[1]!.replace(/"/g, ''));
    const effective = assignments.at(-1)!.split(/\s+/);
    expect(effective).toEqual(expect.arrayContaining(['--enable-source-maps', '--max-old-space-size=96', '--max-semi-space-size=4']));
    expect(readFileSync('README.md', 'utf8')).toContain(`NODE_OPTIONS="${assignments.at(-1)}"`);
  });

  it('every repository path the CLI and the configuration examples point to is in the npm package', () => {
    const sources = ['src/cli', 'config'].flatMap((dir) => readdirSync(dir).map((f) => `${dir}/${f}`));
    const mentioned = new Set(sources.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/\b((?:docs|config|deploy)\/[\w./-]+\.(?:md|ya?ml|json))\b/g)].map((m) => m[1]!)));
    expect(mentioned.size).toBeGreaterThan(0);
    for (const path of mentioned) {
      expect(existsSync(path), `${path} exists`).toBe(true);
      expect(pkg.files.some((entry) => path === entry || path.startsWith(`${entry}/`)), `${path} is in package.json "files"`).toBe(true);
    }
  });
});

describe('Kubernetes example, in the README’s order', () => {
  const readme = readFileSync('README.md', 'utf8');
  const steps = readme
    .slice(readme.indexOf('- **Kubernetes**'), readme.indexOf('- **Monitoring**'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('kubectl'));

  it('creates the namespace, then the Secret in it, then applies the rest', () => {
    const namespace = (parse(readFileSync('deploy/kubernetes/namespace.yaml', 'utf8')) as { metadata: { name: string } }).metadata.name;
    const kustomization = parse(readFileSync('deploy/kubernetes/kustomization.yaml', 'utf8')) as { namespace: string; resources: string[] };
    expect(kustomization.namespace).toBe(namespace);
    expect(kustomization.resources).not.toContain('secret.example.yaml');
    expect(steps.map((s) => s.replace(/ \\$/, ''))).toEqual([
      'kubectl apply -f deploy/kubernetes/namespace.yaml',
      `kubectl -n ${namespace} create secret generic wooxy-cdc`,
      'kubectl apply -k deploy/kubernetes',
    ]);
    // The same order where the example Secret says how to create it.
    const comment = readFileSync('deploy/kubernetes/secret.example.yaml', 'utf8');
    const order = ['kubectl apply -f deploy/kubernetes/namespace.yaml', `kubectl -n ${namespace} create secret`, 'kubectl apply -k deploy/kubernetes'].map((s) => comment.indexOf(s));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('the Secret the README creates has the name the Deployment reads, with every key the configuration needs', () => {
    const block = readme.slice(readme.indexOf('create secret generic'), readme.indexOf('kubectl apply -k deploy/kubernetes'));
    const keys = [...block.matchAll(/--from-literal=([A-Z_]+)=/g)].map((m) => m[1]).sort();
    const secret = parse(readFileSync('deploy/kubernetes/secret.example.yaml', 'utf8')) as { metadata: { name: string }; stringData: Record<string, string> };
    expect(keys).toEqual(Object.keys(secret.stringData).sort());
    const deployment = parseAllDocuments(readFileSync('deploy/kubernetes/deployment.yaml', 'utf8'))[0]!.toJS() as {
      spec: { template: { spec: { containers: Array<{ envFrom: Array<{ secretRef: { name: string } }> }> } } };
    };
    expect(deployment.spec.template.spec.containers[0]!.envFrom[0]!.secretRef.name).toBe(secret.metadata.name);
    expect(block).toContain(`create secret generic ${secret.metadata.name}`);
  });
});

describe('Prometheus alert rules', () => {
  interface Rule {
    alert: string;
    expr: string;
    for: string;
    labels: { severity: string };
    annotations: { summary: string; runbook: string };
  }
  const rules = (parse(readFileSync('deploy/prometheus/wooxy-cdc-alerts.yaml', 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);
  const metricsOf = (expr: string) => [...expr.matchAll(/wooxy_cdc_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));

  it('query only registered metrics', () => {
    const known = new Set(registered());
    expect(rules.flatMap((r) => metricsOf(r.expr)).filter((n) => !known.has(n))).toEqual([]);
  });

  it('cover lag, retained WAL, dead letters, a paused delivery, a stopped mapping, held removals, the 7-day window and leadership', () => {
    const used = new Set(rules.flatMap((r) => metricsOf(r.expr)));
    for (const metric of [
      'wooxy_cdc_replication_lag_bytes',
      'wooxy_cdc_slot_retained_wal_warning',
      'wooxy_cdc_dead_letter_contacts',
      'wooxy_cdc_delivery_paused',
      'wooxy_cdc_mapping_stopped',
      'wooxy_cdc_removals_held',
      'wooxy_cdc_oldest_unresolved_request_age_seconds',
      'wooxy_cdc_leader',
    ]) {
      expect(used, metric).toContain(metric);
    }
  });

  it('each has a duration, a severity, a summary and a Runbook entry that exists in the README', () => {
    const readme = readFileSync('README.md', 'utf8');
    const runbook = readme.slice(readme.indexOf('### Runbook'), readme.indexOf('### Snapshot and resync'));
    const entries = [...runbook.matchAll(/^\*\*([^*]+?)\.?\*\*/gm)].map((m) => m[1]!);
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toBeTruthy();
      const entry = /Runbook, "([^"]+)"/.exec(r.annotations.runbook)?.[1];
      expect(entries, `${r.alert} → ${entry}`).toContain(entry);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('the dashboard shows stopped mappings and held removals', () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana/wooxy-cdc-dashboard.json', 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const panel = (metric: string) => dashboard.panels.find((p) => p.targets.some((t) => t.expr.includes(metric)));
    expect(panel('wooxy_cdc_mapping_stopped')?.title).toBe('Stopped mappings');
    expect(panel('wooxy_cdc_removals_held')?.title).toBe('Held removals');
  });
});
