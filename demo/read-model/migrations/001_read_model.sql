-- The demo's read model: one row per customer and order, the order lines, and the denormalised
-- order summaries the queries use. Every row carries its aggregate's version.
CREATE TABLE customers (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  email VARCHAR(255) NOT NULL,
  version BIGINT NOT NULL
) ENGINE=InnoDB;

CREATE TABLE orders (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  customer_id VARCHAR(64) NOT NULL,
  status VARCHAR(16) NOT NULL,
  total_cents BIGINT NOT NULL,
  version BIGINT NOT NULL,
  KEY by_customer (customer_id)
) ENGINE=InnoDB;

CREATE TABLE order_lines (
  order_id VARCHAR(64) NOT NULL,
  line_id VARCHAR(64) NOT NULL,
  sku VARCHAR(64) NOT NULL,
  quantity INT NOT NULL,
  unit_price_cents BIGINT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (order_id, line_id)
) ENGINE=InnoDB;

CREATE TABLE order_summaries (
  order_id VARCHAR(64) NOT NULL PRIMARY KEY,
  customer_id VARCHAR(64) NOT NULL,
  customer_name VARCHAR(255) NULL,
  line_count INT NOT NULL,
  total_cents BIGINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  version BIGINT NOT NULL,
  KEY by_customer (customer_id)
) ENGINE=InnoDB;
