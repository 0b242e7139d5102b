// The example's settings, read once from the environment (the local servers export these).
function need(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set (start servers with \`npm run servers\` in cqrs-sync)`);
  return value;
}

export const settings = {
  mongodbUri: need('MONGODB_URI'),
  mysqlAdminUrl: need('MYSQL_URL'),
  schemaRegistryUrl: need('SCHEMA_REGISTRY_URL'),
  /** The write model's database in MongoDB. */
  database: process.env.EXAMPLE_DATABASE ?? 'tasks_example',
};
