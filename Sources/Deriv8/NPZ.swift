/// Reader for NumPy's .npz files (a zip of .npy arrays), in the layout Keras uses for its data
/// sets. Placeholder until the reader lands.
public enum NPZ {
    public static func loadDataSet(_ path: String) throws(DataFileError) -> DataSet {
        throw DataFileError(path: path, problem: "not a folder of IDX files, and .npz files are not read yet")
    }
}
