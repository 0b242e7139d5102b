/** Start-up checks of the projections against the catalog (types, state fields) and, through the
 * store, against the database (tables, columns). Errors list every problem with where it is. */
import type { Catalog } from '../schemas/catalog.js';
import { PipelineError } from '../schemas/errors.js';
import { SINK_TABLES } from './migrations.js';
import type { Projection, TableRequirement } from './projection.js';

export function checkProjections(catalog: Catalog, projections: readonly Projection[]): void {
  const problems: string[] = [];
  const names = new Set<string>();
  if (projections.length === 0) problems.push('no projections: give at least one');
  for (const p of projections) {
    if (names.has(p.name)) problems.push(`projection "${p.name}" is declared twice`);
    names.add(p.name);
    if (p.handles.length === 0) problems.push(`projection "${p.name}" handles no event type`);
    for (const h of p.handles) {
      if (!catalog.findEvent(h) && !catalog.findAggregate(h)) {
        const known = catalog.aggregates.flatMap((a) => [a.type, ...a.events.map((e) => e.type)]);
        problems.push(
          `projection "${p.name}" handles "${h}", which is neither an event type nor an aggregate type of the catalog (known: ${known.join(', ')})`,
        );
      }
    }
    if (p.check) {
      problems.push(
        ...p.check((t) => catalog.findAggregate(t)?.stateSchema.fields.map((f) => f.name)),
      );
    }
  }
  if (problems.length > 0) {
    throw new PipelineError('config_invalid', `invalid projections:\n  ${problems.join('\n  ')}`, {
      retriable: false,
    });
  }
}

/** Every table the sink needs: its own bookkeeping and the projections' tables. */
export function requiredTables(projections: readonly Projection[]): TableRequirement[] {
  const where = 'sink bookkeeping';
  return [
    { table: SINK_TABLES.events, columns: ['event_id'], where },
    {
      table: SINK_TABLES.aggregates,
      columns: ['aggregate_type', 'aggregate_id', 'version', 'status'],
      where,
    },
    {
      table: SINK_TABLES.waiting,
      columns: ['aggregate_type', 'aggregate_id', 'status', 'status_since'],
      where,
    },
    { table: SINK_TABLES.held, columns: ['id', 'kind', 'event_id'], where },
    { table: SINK_TABLES.offsets, columns: ['consumer_group', 'next_offset'], where },
    { table: SINK_TABLES.decisions, columns: ['event_id', 'decision'], where },
    { table: SINK_TABLES.decisionsGeneration, columns: ['id', 'generation'], where },
    ...projections.flatMap((p) => p.tables),
  ];
}

/** The read-model tables the projections write (for replay and shadow rebuilds). */
export function projectionTables(projections: readonly Projection[]): string[] {
  return [...new Set(projections.flatMap((p) => p.tables.map((t) => t.table)))];
}
