import type { z } from 'zod';
import type { EventOf, StateOf } from '../schemas/avro-types.js';
import type { AggregateDefinition } from '../schemas/catalog.js';
import { idProblem } from '../schemas/envelope.js';
import { PipelineError, isPipelineError } from '../schemas/errors.js';
import { illFormedString } from '../schemas/well-formed.js';
import type { AggregateClass, AggregateRoot } from './aggregate.js';
import { commandTraceContext } from './outbox.js';
import type { CommandOutcome } from './ports.js';
import type { Repository } from './repository.js';

/**
 * Every command carries a client-chosen id: the same id twice runs once. It may also carry W3C
 * `traceparent`/`tracestate` (read from the input, whatever the command's schema says); the
 * active OpenTelemetry span, when there is one, takes precedence.
 */
export interface Command {
  readonly commandId: string;
}

export interface CommandDefinition<C extends Command, A> {
  /** For errors and logs: `RegisterCustomer`. */
  readonly name: string;
  /** Validates the input; failures, and strings that are not well-formed Unicode anywhere in the
   * parsed command, become `command_invalid`. */
  readonly schema: z.ZodType<C>;
  readonly aggregateId: (command: C) => string;
  /** Runs the domain: calls the aggregate's methods, which raise events or throw domain errors. */
  readonly execute: (aggregate: A, command: C) => void;
}

/** A command declared with `defineCommand`: it carries its aggregate class and its zod schema. */
export type DefinedCommand<
  D extends AggregateDefinition,
  A extends AggregateRoot<StateOf<D>, EventOf<D>>,
  S extends z.ZodType<Command>,
> = CommandDefinition<z.output<S>, A> & {
  readonly schema: S;
  readonly aggregate: AggregateClass<D, A>;
};

/**
 * Declares a command on an aggregate class: the command's type is the schema's output, so
 * `aggregateId` and `execute` are typed without restating it. The result also works with
 * `commandHandler(repository, command)`.
 */
export function defineCommand<
  D extends AggregateDefinition,
  A extends AggregateRoot<StateOf<D>, EventOf<D>>,
  S extends z.ZodType<Command>,
>(
  aggregate: AggregateClass<D, A>,
  definition: {
    readonly name: string;
    readonly schema: S;
    readonly aggregateId: (command: z.output<S>) => string;
    readonly execute: (aggregate: A, command: z.output<S>) => void;
  },
): DefinedCommand<D, A, S> {
  // S's output is z.output<S>: TS cannot see that a generic S is a ZodType of its own output.
  return { ...definition, aggregate } as DefinedCommand<D, A, S>;
}

/** A command's result: run now, or a repeat of a recorded command with the first run's outcome. */
export type CommandResult =
  | ({ readonly applied: true } & CommandOutcome)
  | ({ readonly applied: false; readonly reason: 'duplicate' | 'no_events' } & CommandOutcome);

export interface CommandHandlerOptions {
  /** Re-runs on `concurrency_conflict` (load again, execute again). Default 3. */
  readonly maxConflictRetries?: number;
}

/**
 * A handler for one command: validate, load the aggregate (with the command ids it recorded), return
 * the recorded outcome for a repeat, else execute and save. Saving records the command id in the same
 * single-document write as the state and events, conditional on the loaded version, so of two
 * concurrent repeats exactly one applies and the other, reloading after the conflict, gets its
 * outcome. A repeat is recognised among the aggregate's last `commandIdsKept` commands, and only
 * when it addresses the same aggregate (docs/write.md, "Idempotency"). Conflicts are retried, then
 * rethrown.
 */
export function commandHandler<C extends Command, S extends object, A extends AggregateRoot<S>>(
  repository: Repository<S, A>,
  definition: CommandDefinition<C, A>,
  options: CommandHandlerOptions = {},
): (input: unknown) => Promise<CommandResult> {
  const maxRetries = options.maxConflictRetries ?? 3;
  return async (input) => {
    const command = parseCommand(definition, input);
    const aggregateId = definition.aggregateId(command);
    // Refused here, with the command, rather than dead-lettered by the sink later.
    const bad = idProblem(aggregateId);
    if (bad) {
      throw new PipelineError(
        'command_invalid',
        `${definition.name} is invalid: aggregate id ${JSON.stringify(aggregateId.slice(0, 60))} ${bad}`,
        { retriable: false, context: { command: definition.name } },
      );
    }
    const trace = commandTraceContext(input);
    for (let attempt = 0; ; attempt++) {
      // The command ids the aggregate recorded come with it, in the same read.
      const { aggregate, recorded } = await repository.loadFor(aggregateId, command.commandId);
      if (recorded) return { applied: false, reason: 'duplicate', ...recorded };
      definition.execute(aggregate, command);
      try {
        const saved = await repository.save(aggregate, {
          commandId: command.commandId,
          ...(trace ? { trace } : {}),
        });
        if (saved.applied) return saved;
        if (saved.reason === 'no_events') {
          return {
            applied: false,
            reason: 'no_events',
            aggregateType: repository.aggregateType,
            aggregateId,
            version: aggregate.version,
            eventIds: [],
          };
        }
        // A concurrent repeat created the aggregate first: the next load returns its outcome.
        continue;
      } catch (e) {
        if (!isPipelineError(e, 'concurrency_conflict') || attempt >= maxRetries) throw e;
      }
    }
  };
}

export function parseCommand<C extends Command>(
  definition: Pick<CommandDefinition<C, unknown>, 'name' | 'schema'>,
  input: unknown,
): C {
  const parsed = definition.schema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`,
    );
    throw new PipelineError(
      'command_invalid',
      `${definition.name} is invalid: ${problems.join('; ')}`,
      { retriable: false, context: { command: definition.name } },
    );
  }
  // Before anything is looked up or saved: no store keeps a lone surrogate as it was sent.
  const bad = illFormedString(parsed.data);
  if (bad) {
    throw new PipelineError(
      'command_invalid',
      `${definition.name} is invalid: ${bad.path} ${bad.problem}`,
      { retriable: false, context: { command: definition.name, field: bad.path } },
    );
  }
  return parsed.data;
}
