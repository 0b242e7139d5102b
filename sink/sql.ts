/** A MySQL identifier quoted for SQL text: backticks around it, a backtick inside doubled. */
export const quoteIdentifier = (name: string): string => `\`${name.replace(/`/g, '``')}\``;
