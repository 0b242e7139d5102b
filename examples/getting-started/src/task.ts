// The domain: one aggregate with two events. It imports cqrs-sync's toolkit and no database driver.
import { z } from 'zod';
import {
  AggregateRoot,
  defineAggregate,
  defineCommand,
  type EventOf,
  type StateOf,
} from 'cqrs-sync';

// The aggregate type as the pipeline sees it: its state and its events, as Avro fields.
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

// Inferred from the fields: { id: string; title: string; done: boolean }, and
// { type: 'TaskAdded'; data: { title: string } } | { type: 'TaskCompleted'; data: {} }.
type TaskState = StateOf<typeof TaskType>;
type TaskEvent = EventOf<typeof TaskType>;

// The aggregate: commands check rules and raise events; `when` gives the state after each event.
export class Task extends AggregateRoot.of(TaskType) {
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

// Commands: validated input (its type is the schema's), the task they address, what they do.
export const AddTask = defineCommand(Task, {
  name: 'AddTask',
  schema: z.object({ commandId: z.string(), taskId: z.string(), title: z.string() }),
  aggregateId: (c) => c.taskId,
  execute: (task, c) => {
    task.add(c.title);
  },
});

export const CompleteTask = defineCommand(Task, {
  name: 'CompleteTask',
  schema: z.object({ commandId: z.string(), taskId: z.string() }),
  aggregateId: (c) => c.taskId,
  execute: (task) => {
    task.complete();
  },
});
