/**
 * docker-compose.yml and infra/Dockerfile, checked without a Docker engine: services, healthchecks,
 * start order, a scalable sink, and every process's environment validated by that process's own
 * config loader; and `docker compose config -q` where Compose v2 is installed (`npm test` builds it
 * where Go is; elsewhere the run's `not run:` line names this test).
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadDemoWebConfig } from '../demo/web/config.js';
import { loadRelayConfig } from '../relay/config.js';
import { loadSinkConfig } from '../sink/config.js';
import { composeCommand } from '../test/support/prerequisites.js';
import { itRequiring } from '../test/support/requires.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  container_name?: string;
  ports?: (string | { published?: unknown })[];
  environment?: Record<string, string | number | boolean>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  profiles?: string[];
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;

function service(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

/** Compose's `${VAR:-default}` interpolation, with the defaults (what `docker compose up` uses
 * when nothing is set). `$$` is a literal `$`. */
function interpolate(value: string): string {
  return value
    .replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_, _name: string, def?: string) => def ?? '')
    .replace(/\$\$/g, '$');
}

function environment(name: string): Record<string, string> {
  const env = service(name).environment ?? {};
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v))]));
}

function hostOf(url: string): string {
  return new URL(url).hostname;
}

describe('docker-compose.yml', () => {
  it('has every part of the pipeline', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'console',
        'demo',
        'grafana',
        'migrate',
        'mongodb',
        'mysql',
        'prometheus',
        'redpanda',
        'relay',
        'sink',
      ].sort(),
    );
    expect(service('mysql').image).toMatch(/^mysql:8/);
    expect(service('mongodb').image).toMatch(/^mongo:/);
    expect(service('redpanda').image).toMatch(/redpanda/);
    expect(service('console').image).toMatch(/console/);
    for (const app of ['migrate', 'relay', 'sink', 'demo']) {
      expect(service(app).build).toBeDefined();
    }
    expect(service('relay').command).toEqual(['relay']);
    expect(service('sink').command).toEqual(['sink']);
    expect(service('migrate').command).toEqual(['sink', 'migrate']);
    expect(service('demo').command).toEqual(['demo-web']);
  });

  it('runs MongoDB as a replica set it initiates itself, with healthchecks on every server', () => {
    const mongo = service('mongodb');
    expect(mongo.command).toEqual(expect.arrayContaining(['--replSet', 'rs0']));
    expect(JSON.stringify(mongo.healthcheck?.test)).toMatch(/rs\.initiate/);
    expect(JSON.stringify(mongo.healthcheck?.test)).toMatch(/isWritablePrimary/);
    for (const name of ['mongodb', 'mysql', 'redpanda']) {
      expect(service(name).healthcheck?.test).toBeDefined();
    }
    expect(JSON.stringify(service('redpanda').command)).toMatch(/--schema-registry-addr/);
  });

  it('starts things in order: healthy servers, migrations done, then relay, sinks and demo', () => {
    const dep = (name: string) => service(name).depends_on ?? {};
    expect(dep('migrate').mysql?.condition).toBe('service_healthy');
    expect(service('migrate').restart).toBe('no');
    expect(dep('relay').mongodb?.condition).toBe('service_healthy');
    expect(dep('relay').redpanda?.condition).toBe('service_healthy');
    expect(dep('sink').migrate?.condition).toBe('service_completed_successfully');
    expect(dep('sink').redpanda?.condition).toBe('service_healthy');
    expect(dep('demo').migrate?.condition).toBe('service_completed_successfully');
    expect(dep('demo').mongodb?.condition).toBe('service_healthy');
    expect(dep('demo').mysql?.condition).toBe('service_healthy');
    // Every "healthy" condition names a service that has a healthcheck.
    for (const [name, s] of Object.entries(services)) {
      for (const [target, d] of Object.entries(s.depends_on ?? {})) {
        expect({ name, target, exists: target in services }).toEqual({
          name,
          target,
          exists: true,
        });
        if (d.condition === 'service_healthy') {
          const hc = service(target).healthcheck;
          expect({ target, healthcheck: hc?.test !== undefined && hc.disable !== true }).toEqual({
            target,
            healthcheck: true,
          });
        }
      }
    }
  });

  it('lets the sink scale (`--scale sink=3`): no container name, no fixed host port', () => {
    const sink = service('sink');
    expect(sink.container_name).toBeUndefined();
    for (const p of sink.ports ?? []) {
      const published = typeof p === 'string' ? p.split(':').length > 1 : p.published !== undefined;
      expect({ port: p, fixedHostPort: published }).toEqual({ port: p, fixedHostPort: false });
    }
  });

  it('gives each process an environment its own config loader accepts', () => {
    expect(() => loadRelayConfig(environment('relay'))).not.toThrow();
    expect(() => loadSinkConfig(environment('sink'))).not.toThrow();
    expect(() => loadSinkConfig(environment('migrate'))).not.toThrow();
    expect(() => loadDemoWebConfig(environment('demo'))).not.toThrow();
    const demo = loadDemoWebConfig(environment('demo'));
    expect(demo.host).toBe('0.0.0.0');
    // The loaders must also refuse what is wrong, or the check above proves nothing.
    expect(() => loadSinkConfig({ ...environment('sink'), MYSQL_URL: 'mysql-less' })).toThrow(
      /MYSQL_URL/,
    );
    expect(() => loadRelayConfig({ ...environment('relay'), MONGODB_URI: '' })).toThrow(
      /MONGODB_URI/,
    );
  });

  it('points every URL at a service of the file, with the accounts the servers create', () => {
    for (const name of ['relay', 'sink', 'migrate', 'demo']) {
      const env = environment(name);
      expect(services[hostOf(env.MONGODB_URI ?? '')]).toBeDefined();
      expect(env.MONGODB_URI).toMatch(/replicaSet=rs0/);
      expect(services[hostOf(env.SCHEMA_REGISTRY_URL ?? '')]).toBeDefined();
      for (const broker of (env.KAFKA_BROKERS ?? '').split(',')) {
        expect(services[broker.split(':')[0] ?? '']).toBeDefined();
      }
      if (env.MYSQL_URL) expect(services[hostOf(env.MYSQL_URL)]).toBeDefined();
    }
    const mysqlEnv = environment('mysql');
    const database = mysqlEnv.MYSQL_DATABASE ?? '';
    const init = read('infra/compose/mysql-init/01-sink-user.sh');
    // The sink and the demo apply with the least-privilege account; only migrate has root.
    for (const name of ['sink', 'demo']) {
      const url = new URL(environment(name).MYSQL_URL ?? '');
      expect(url.username).toBe('cqrs_sink');
      expect(url.password).toBe(mysqlEnv.MYSQL_SINK_PASSWORD);
      expect(url.pathname).toBe(`/${database}`);
      expect(init).toContain(`'${url.username}'`);
      expect(init).toContain(`${database}.*`);
    }
    const migrate = new URL(environment('migrate').MYSQL_URL ?? '');
    expect(migrate.username).toBe('root');
    expect(migrate.password).toBe(mysqlEnv.MYSQL_ROOT_PASSWORD);
  });

  itRequiring('compose')('passes `docker compose config -q`', () => {
    const [bin = 'docker', ...args] = composeCommand() ?? [];
    const r = spawnSync(bin, [...args, 'config', '-q'], { cwd: ROOT, encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });
});

describe('observability profile', () => {
  it('runs Prometheus and Grafana only in the `observability` profile', () => {
    for (const name of ['prometheus', 'grafana']) {
      expect(service(name).profiles).toEqual(['observability']);
    }
    for (const name of ['relay', 'sink', 'demo', 'mysql']) {
      expect(service(name).profiles).toBeUndefined();
    }
  });

  it('scrapes the ports relay and sink serve their metrics on', () => {
    const prom = parse(read('infra/observability/prometheus.yml')) as {
      scrape_configs: { job_name: string; dns_sd_configs: { names: string[]; port: number }[] }[];
    };
    const port = (svc: string) =>
      prom.scrape_configs.flatMap((j) => j.dns_sd_configs).find((d) => d.names.includes(svc))?.port;
    expect(String(port('relay'))).toBe(environment('relay').RELAY_OPS_PORT);
    expect(String(port('sink'))).toBe(environment('sink').SINK_OPS_PORT);
    expect(environment('relay').RELAY_OPS_HOST).toBe('0.0.0.0');
    expect(environment('sink').SINK_OPS_HOST).toBe('0.0.0.0');
    expect(loadRelayConfig(environment('relay')).opsPort).toBe(9464);
    expect(loadSinkConfig(environment('sink')).opsPort).toBe(9465);
  });

  it('charts only metrics the code defines', () => {
    const dashboard = read('infra/observability/grafana/dashboards/cqrs-sync.json');
    const defined = new Set(
      [read('relay/metrics.ts'), read('relay/feed.ts'), read('sink/metrics.ts')].flatMap((src) =>
        [...src.matchAll(/name: '(cqrs_sync_[a-z_]+)'/g)].map((m) => m[1]),
      ),
    );
    const used = new Set(
      [...dashboard.matchAll(/cqrs_sync_[a-z_]+/g)].map((m) =>
        m[0].replace(/_(bucket|count|sum)$/, ''),
      ),
    );
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !defined.has(n))).toEqual([]);
  });
});

describe('infra/Dockerfile', () => {
  const dockerfile = read('infra/Dockerfile');

  it('is multi-stage, runs as a non-root user, and has a healthcheck', () => {
    expect(dockerfile.match(/^FROM /gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER (?!root)\S+/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/cqrs-sync\.js"\]/m);
  });

  it('builds the config module the compose file names', () => {
    const configFile = environment('relay').CQRS_SYNC_CONFIG ?? '';
    expect(configFile).toBe('/app/demo/cqrs-sync.config.js');
    const image = JSON.parse(read('infra/compose/tsconfig.image.json')) as { include: string[] };
    expect(image.include).toContain('../../demo');
    expect(dockerfile).toContain('infra/compose/tsconfig.image.json');
  });
});
