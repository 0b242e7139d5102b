import {
  type EventCodec,
  commandHandler,
  type CommandHandlerOptions,
  type CommandResult,
  type WriteStore,
  Repository,
} from '../../index.js';
import {
  ChangeCustomerEmail,
  createCustomer,
  DeleteCustomer,
  RegisterCustomer,
  RenameCustomer,
  UpdateCustomer,
  type Customer,
} from './customer.js';
import type { CustomerState, OrderState } from './definitions.js';
import {
  AddOrderLine,
  CancelOrder,
  CreateOrder,
  createOrder,
  DeleteOrder,
  PlaceOrder,
  RemoveOrderLine,
  type Order,
} from './order.js';

export type DemoCommandName =
  | 'RegisterCustomer'
  | 'RenameCustomer'
  | 'ChangeCustomerEmail'
  | 'UpdateCustomer'
  | 'DeleteCustomer'
  | 'CreateOrder'
  | 'AddOrderLine'
  | 'RemoveOrderLine'
  | 'PlaceOrder'
  | 'CancelOrder'
  | 'DeleteOrder';

export type DemoCommands = Readonly<
  Record<DemoCommandName, (input: unknown) => Promise<CommandResult>>
>;

/** The demo's command handlers over any `WriteStore` (MongoDB, or in memory in unit tests). */
export function demoCommands(
  store: WriteStore,
  codec: EventCodec,
  options: CommandHandlerOptions = {},
): DemoCommands {
  const customers = new Repository<CustomerState, Customer>({
    store,
    codec,
    aggregateType: 'Customer',
    create: createCustomer,
  });
  const orders = new Repository<OrderState, Order>({
    store,
    codec,
    aggregateType: 'Order',
    create: createOrder,
  });
  return {
    RegisterCustomer: commandHandler(customers, RegisterCustomer, options),
    RenameCustomer: commandHandler(customers, RenameCustomer, options),
    ChangeCustomerEmail: commandHandler(customers, ChangeCustomerEmail, options),
    UpdateCustomer: commandHandler(customers, UpdateCustomer, options),
    DeleteCustomer: commandHandler(customers, DeleteCustomer, options),
    CreateOrder: commandHandler(orders, CreateOrder, options),
    AddOrderLine: commandHandler(orders, AddOrderLine, options),
    RemoveOrderLine: commandHandler(orders, RemoveOrderLine, options),
    PlaceOrder: commandHandler(orders, PlaceOrder, options),
    CancelOrder: commandHandler(orders, CancelOrder, options),
    DeleteOrder: commandHandler(orders, DeleteOrder, options),
  };
}
