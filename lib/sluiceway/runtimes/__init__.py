"""How a SparkSession and job arguments are obtained on each platform."""
