import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.io.File;
import java.net.URL;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Foreground launcher for the MongoDB stand-in (mongo-java-server) used by the
 * local test harness. Started by infra/local/mongo-stand-in/run.sh; configured
 * through the environment:
 *
 * <ul>
 *   <li>PORT (required): TCP port, bound on HOST (default 127.0.0.1)</li>
 *   <li>DATA_DIR (required): used by the h2 backend only (file DATA_DIR/mongo.mv.db)</li>
 *   <li>MONGO_BACKEND: "memory" (default, nothing survives a restart) or "h2"</li>
 *   <li>MONGO_SERVER_VERSION: wire version to report, "5.0" (default), "4.0" or "3.6";
 *       the Node driver 6.x needs 5.0 (it requires wire version 8 or newer)</li>
 * </ul>
 *
 * The oplog is always enabled so that change streams (collection.watch()) work.
 * Ready when stdout shows "mongo-java-server VERSION listening on HOST:PORT".
 * SIGTERM/SIGINT run a shutdown hook that closes clients and the backend.
 */
public final class MongoStandIn {

    private MongoStandIn() {
    }

    public static void main(String[] args) {
        String host = env("HOST", "127.0.0.1");
        int port = parsePort(required("PORT"));
        String dataDir = required("DATA_DIR");
        String backendName = env("MONGO_BACKEND", "memory").trim().toLowerCase();
        String wireVersionName = env("MONGO_SERVER_VERSION", "5.0").trim();

        ServerVersion serverVersion;
        try {
            serverVersion = ServerVersion.valueOf("MONGO_" + wireVersionName.replace('.', '_'));
        } catch (IllegalArgumentException e) {
            throw fail("MONGO_SERVER_VERSION must be one of 3.6, 4.0, 5.0; got '" + wireVersionName + "'");
        }

        MongoBackend backend;
        String backendDescription;
        switch (backendName) {
            case "memory":
                backend = new MemoryBackend();
                backendDescription = "memory";
                break;
            case "h2":
                File dir = new File(dataDir);
                if (!dir.isDirectory() && !dir.mkdirs()) {
                    throw fail("cannot create DATA_DIR " + dir);
                }
                File file = new File(dir, "mongo.mv.db");
                backend = new H2Backend(file.getAbsolutePath());
                backendDescription = "h2 " + file.getAbsolutePath();
                break;
            default:
                throw fail("MONGO_BACKEND must be 'memory' or 'h2'; got '" + backendName + "'");
        }
        backend.version(serverVersion);

        MongoServer server = new MongoServer(backend);
        // Change streams need the oplog; it is off by default in mongo-java-server.
        server.enableOplog();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("mongo-stand-in: shutting down");
            System.out.flush();
            try {
                server.shutdownNow();
            } catch (RuntimeException e) {
                System.err.println("mongo-stand-in: error during shutdown: " + e);
            } finally {
                stopped.countDown();
            }
        }, "mongo-stand-in-shutdown"));

        try {
            server.bind(host, port);
        } catch (Exception e) { // netty rethrows checked exceptions such as BindException
            throw fail("cannot listen on " + host + ":" + port + ": " + rootMessage(e));
        }

        System.out.println("mongo-java-server " + libraryVersion() + " listening on " + host + ":" + port
            + " (backend " + backendDescription + ", reports MongoDB " + serverVersion.toVersionString()
            + ", wire version " + serverVersion.getWireVersion() + ", oplog enabled)");
        System.out.flush();

        // Netty's threads keep serving; park main until the shutdown hook ran.
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Version of the mongo-java-server-core jar actually on the classpath. */
    private static String libraryVersion() {
        try {
            URL location = MongoServer.class.getProtectionDomain().getCodeSource().getLocation();
            Matcher m = Pattern.compile("mongo-java-server-core-([^/]+)\\.jar$").matcher(location.getPath());
            if (m.find()) {
                return m.group(1);
            }
        } catch (RuntimeException ignored) {
            // fall through
        }
        return System.getProperty("mongo.java.server.version", "unknown");
    }

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    private static String required(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            throw fail(name + " is required");
        }
        return value;
    }

    private static int parsePort(String value) {
        try {
            int port = Integer.parseInt(value.trim());
            if (port > 0 && port < 65536) {
                return port;
            }
        } catch (NumberFormatException ignored) {
            // fall through
        }
        throw fail("PORT must be a TCP port number; got '" + value + "'");
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null) {
            t = t.getCause();
        }
        return t.toString();
    }

    private static RuntimeException fail(String message) {
        System.err.println("[mongo-stand-in] ERROR: " + message);
        System.err.flush();
        System.exit(2);
        return new IllegalStateException(message); // not reached
    }
}
