import { z } from 'zod';
import { AggregateRoot, type CommandDefinition } from '../../index.js';
import type { CustomerState } from './definitions.js';

export type CustomerEvent =
  | { readonly type: 'CustomerRegistered'; readonly data: { name: string; email: string } }
  | { readonly type: 'CustomerRenamed'; readonly data: { name: string } }
  | { readonly type: 'CustomerEmailChanged'; readonly data: { email: string } }
  | { readonly type: 'CustomerDeleted'; readonly data: Record<string, never> };

/** Deliberately simple: one @, no spaces, a dot in the domain. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export class Customer extends AggregateRoot<CustomerState, CustomerEvent> {
  static readonly type = 'Customer';
  readonly aggregateType = Customer.type;

  register(name: string, email: string): void {
    this.ensure(!this.exists && this.version === 0, 'is already registered');
    this.ensure(name.trim().length > 0, 'name must not be empty');
    this.ensure(EMAIL.test(email), `"${email}" is not an email address`);
    this.raise({ type: 'CustomerRegistered', data: { name, email } });
  }

  rename(name: string): void {
    const state = this.requireState();
    this.ensure(name.trim().length > 0, 'name must not be empty');
    if (state.name === name) return;
    this.raise({ type: 'CustomerRenamed', data: { name } });
  }

  changeEmail(email: string): void {
    const state = this.requireState();
    this.ensure(EMAIL.test(email), `"${email}" is not an email address`);
    if (state.email === email) return;
    this.raise({ type: 'CustomerEmailChanged', data: { email } });
  }

  /**
   * A new name and/or a new email as one change: one command, one commit with the events it needs
   * (`CustomerRenamed`, `CustomerEmailChanged`, or both), so it is saved whole or not at all. A
   * value equal to the current one raises nothing.
   */
  update(change: {
    readonly name?: string | undefined;
    readonly email?: string | undefined;
  }): void {
    this.requireState();
    this.ensure(
      change.name !== undefined || change.email !== undefined,
      'give a new name or a new email',
    );
    if (change.name !== undefined) this.rename(change.name);
    if (change.email !== undefined) this.changeEmail(change.email);
  }

  delete(): void {
    this.requireState();
    this.raise({ type: 'CustomerDeleted', data: {} });
  }

  protected when(state: CustomerState | null, event: CustomerEvent): CustomerState | null {
    switch (event.type) {
      case 'CustomerRegistered':
        return { id: this.id, name: event.data.name, email: event.data.email };
      case 'CustomerRenamed':
        return state && { ...state, name: event.data.name };
      case 'CustomerEmailChanged':
        return state && { ...state, email: event.data.email };
      case 'CustomerDeleted':
        return null;
    }
  }
}

export const createCustomer = (
  id: string,
  stored?: { version: number; state: Record<string, unknown> | null },
): Customer =>
  new Customer(
    id,
    stored && { version: stored.version, state: stored.state as CustomerState | null },
  );

const base = { commandId: z.string().min(1), customerId: z.string().min(1) };

export const RegisterCustomer = {
  name: 'RegisterCustomer',
  schema: z.object({ ...base, name: z.string().min(1), email: z.string().min(3) }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.register(c.name, c.email);
  },
} satisfies CommandDefinition<
  { commandId: string; customerId: string; name: string; email: string },
  Customer
>;

export const RenameCustomer = {
  name: 'RenameCustomer',
  schema: z.object({ ...base, name: z.string().min(1) }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.rename(c.name);
  },
} satisfies CommandDefinition<{ commandId: string; customerId: string; name: string }, Customer>;

export const ChangeCustomerEmail = {
  name: 'ChangeCustomerEmail',
  schema: z.object({ ...base, email: z.string().min(3) }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.changeEmail(c.email);
  },
} satisfies CommandDefinition<{ commandId: string; customerId: string; email: string }, Customer>;

/** Name and/or email in one command (the web app's edit): all or nothing, one version check. */
export const UpdateCustomer = {
  name: 'UpdateCustomer',
  schema: z.object({
    ...base,
    name: z.string().min(1).optional(),
    email: z.string().min(3).optional(),
  }),
  aggregateId: (c) => c.customerId,
  execute: (a, c) => {
    a.update({ name: c.name, email: c.email });
  },
} satisfies CommandDefinition<
  { commandId: string; customerId: string; name?: string | undefined; email?: string | undefined },
  Customer
>;

export const DeleteCustomer = {
  name: 'DeleteCustomer',
  schema: z.object(base),
  aggregateId: (c) => c.customerId,
  execute: (a) => {
    a.delete();
  },
} satisfies CommandDefinition<{ commandId: string; customerId: string }, Customer>;
