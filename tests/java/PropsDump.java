// Reads each FILE with java.util.Properties.load(InputStream) (ISO-8859-1 + \\uXXXX escapes, as the
// JDK defines it) and prints one line per file: a JSON object of its keys and values, every char
// outside printable ASCII written as \\uXXXX (UTF-16 units, so lone surrogates survive).
// Run as a single-file program: java tests/java/PropsDump.java FILE...
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.Properties;
import java.util.TreeMap;

public class PropsDump {
    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        for (String file : args) {
            Properties p = new Properties();
            try (InputStream in = new FileInputStream(file)) {
                p.load(in);
            }
            TreeMap<String, String> sorted = new TreeMap<>();
            for (String k : p.stringPropertyNames()) {
                sorted.put(k, p.getProperty(k));
            }
            StringBuilder out = new StringBuilder("{");
            boolean first = true;
            for (var e : sorted.entrySet()) {
                if (!first) out.append(", ");
                first = false;
                out.append(q(e.getKey())).append(": ").append(q(e.getValue()));
            }
            System.out.println(out.append("}"));
        }
    }
}
