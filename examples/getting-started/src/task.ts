// The domain: one aggregate with two events. It imports cqrs-sync's toolkit and no database driver.
import { z } from 'zod';
import { AggregateRoot, defineAggregate, type CommandDefinition } from 'cqrs-sync';

// 1. The aggregate type as the pipeline sees it: its state and its events, as Avro fields.
export const TaskType = defineAggregate({
  type: 'Task',
  state: {
    fields: [
      { name: 'id', type: 'string' },
      { name: 'title', type: 'string' },
      { name: 'done', type: 'boolean' },
    ],
  },
  events: {
    TaskAdded: { fields: [{ name: 'title', type: 'string' }] },
    TaskCompleted: { fields: [] },
  },
});

interface TaskState {
  id: string;
  title: string;
  done: boolean;
}
type TaskEvent =
  | { readonly type: 'TaskAdded'; readonly data: { title: string } }
  | { readonly type: 'TaskCompleted'; readonly data: Record<string, never> };

// 2. The aggregate: commands check rules and raise events; `when` gives the state after each event.
export class Task extends AggregateRoot<TaskState, TaskEvent> {
  readonly aggregateType = 'Task';

  add(title: string): void {
    this.ensure(!this.exists, 'already exists');
    this.ensure(title.trim().length > 0, 'title must not be empty');
    this.raise({ type: 'TaskAdded', data: { title } });
  }

  complete(): void {
    if (this.requireState().done) return; // completing twice changes nothing
    this.raise({ type: 'TaskCompleted', data: {} });
  }

  protected when(state: TaskState | null, event: TaskEvent): TaskState | null {
    switch (event.type) {
      case 'TaskAdded':
        return { id: this.id, title: event.data.title, done: false };
      case 'TaskCompleted':
        return state && { ...state, done: true };
    }
  }
}

export const createTask = (
  id: string,
  stored?: { version: number; state: Record<string, unknown> | null },
): Task =>
  new Task(id, stored && { version: stored.version, state: stored.state as TaskState | null });

// 3. Commands: validated input, the aggregate they address, what they do.
export const AddTask = {
  name: 'AddTask',
  schema: z.object({ commandId: z.string(), taskId: z.string(), title: z.string() }),
  aggregateId: (c) => c.taskId,
  execute: (task, c) => {
    task.add(c.title);
  },
} satisfies CommandDefinition<{ commandId: string; taskId: string; title: string }, Task>;

export const CompleteTask = {
  name: 'CompleteTask',
  schema: z.object({ commandId: z.string(), taskId: z.string() }),
  aggregateId: (c) => c.taskId,
  execute: (task) => {
    task.complete();
  },
} satisfies CommandDefinition<{ commandId: string; taskId: string }, Task>;
