"""Code that runs inside the spark-submit jobs (shipped to them as a zip)."""
